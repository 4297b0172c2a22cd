"""The sdist and the wheel build, pass ``twine check``, and a wheel installed into a fresh
virtual environment runs: it finds its bundled model and sample recording and detects the
keywords in the sample. Built without network (``--no-isolation``) with the test venv's
setuptools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # build from a copy of the tracked files, so a stale build/ or egg-info cannot hide a missing file
    src = tmp_path_factory.mktemp("src")
    files = run(["git", "ls-files", "-z"], cwd=ROOT)
    if files.returncode != 0:
        pytest.fail(f"git ls-files failed: {files.stderr}")
    for name in files.stdout.split("\0"):
        if name and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    r = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return out


def test_sdist_and_wheel_pass_twine_check(dist):
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"]
    r = run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("PASSED") == 2


def test_wheel_carries_the_model_the_sample_and_the_type_marker(dist):
    wheel = next(dist.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("kwsd/py.typed", "kwsd/cli.py", "kwsd/train/loop.py"):
        assert needed in names
    data = [n for n in names if ".data/data/share/kwsd/" in n]
    assert sorted(n.rsplit("/", 1)[1] for n in data) == ["default.tflite", "kwsd.yaml", "sample.wav"]
    assert not [n for n in names if n.startswith("tests/")]


def test_sdist_carries_docs_unit_and_test_fixtures(dist):
    sdist = next(dist.glob("*.tar.gz"))
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for needed in (
        "LICENSE",
        "docs/contracts.md",
        "systemd/kwsd.service",
        "models/README.md",
        "models/default.tflite",
        "tests/conftest.py",
        "tests/data/README.md",
    ):
        assert needed in names, needed
    assert any(n.startswith("tests/data/speech/yes/") for n in names)


def test_installed_wheel_runs_on_its_bundled_sample(dist, tmp_path):
    venv = tmp_path / "venv"
    r = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert r.returncode == 0, r.stderr
    python = venv / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    r = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # the dependencies come from the test environment (no network); kwsd itself only from the wheel.
    # Added after the install: pip would otherwise find the test environment's kwsd and skip the wheel.
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KWSD_", "PYTHON"))}
    where = run(
        [str(python), "-c", "import kwsd, kwsd.resources as r; print(kwsd.__file__); print(r.default_model())"],
        cwd=tmp_path,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    module, model = where.stdout.split()
    assert module.startswith(str(venv)) and model.startswith(str(venv))
    sample = venv / "share" / "kwsd" / "models" / "sample.wav"
    r = run([str(venv / "bin" / "kwsd"), "run", "--input", str(sample), "--json"], cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    keywords = [json.loads(line)["keyword"] for line in r.stdout.splitlines()]
    assert keywords == ["yes", "stop", "stop", "go"]
