"""Markdown table comparing training runs, from their report.json files.

python bench/arch_table.py runs/*/report.json
"""

import json
import sys
from pathlib import Path


def pct(x):
    return "n/a" if x is None else f"{x:.1%}"


def main(paths):
    print(
        "| run | architecture | steps | params | MACs | int8 bytes | float test | int8 val | int8 test "
        "| invoke µs (int8) | train min |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        r = json.loads(Path(path).read_text())
        print(
            f"| {Path(path).parent.name} | {r['architecture']} | {r['steps']} | {r['params']:,} | {r['macs']:,} "
            f"| {r['int8']['bytes']:,} | {pct(r['float']['testing']['accuracy'])} "
            f"| {pct(r['int8']['validation']['accuracy'])} | {pct(r['int8']['testing']['accuracy'])} "
            f"| {r['int8']['median_invoke_us']} | {r['train_seconds'] / 60:.0f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
