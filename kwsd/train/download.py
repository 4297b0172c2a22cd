"""``--data-url``: download a dataset tarball into a cache, resumably, and extract it safely."""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kwsd" / "datasets"


def download(url: str, cache: Path) -> Path:
    """Fetch ``url`` into ``cache``; a partial file is resumed with an HTTP Range request."""
    cache.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(url.split("?")[0]) or "dataset.tar.gz"
    target = cache / name
    if target.exists():
        return target
    part = cache / (name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=name) as bar,
        ):
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
    part.rename(target)
    return target


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract, refusing members that would land outside ``dest`` (absolute paths, '..',
    links pointing out, device files)."""
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            target = (dest / m.name).resolve()
            if not str(target).startswith(str(dest) + os.sep) and target != dest:
                raise ValueError(f"{archive}: member {m.name!r} would be extracted outside the cache")
            if m.issym() or m.islnk():
                link = (target.parent / m.linkname).resolve() if m.issym() else (dest / m.linkname).resolve()
                if not str(link).startswith(str(dest) + os.sep):
                    raise ValueError(f"{archive}: link {m.name!r} points outside the cache")
            if m.isdev():
                raise ValueError(f"{archive}: member {m.name!r} is a device file")
        tar.extractall(dest, members=members, filter="data")


def fetch_dataset(url: str, data_dir: str | None) -> str:
    """Download and extract ``url``; return the directory holding the word folders."""
    cache = default_cache()
    archive = download(url, cache)
    print(f"{archive.name}: sha256 {sha256(archive)}", flush=True)
    dest = Path(data_dir) if data_dir else cache / archive.name.split(".")[0]
    marker = dest / ".kwsd-extracted"
    if not marker.exists():
        safe_extract(archive, dest)
        marker.write_text(url + "\n")
    return str(dest)
