"""The DET plot that ``kwsd tune`` draws: false rejects against false accepts per hour."""

from __future__ import annotations

from pathlib import Path


def plot_det(result: dict, path: Path) -> None:
    """False-reject rate against false accepts per hour, one curve per keyword (chosen grid point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = result["best"]
    fig, ax = plt.subplots(figsize=(7, 5))
    for k, curve in best["curves"].items():
        frr = [c[1] for c in curve if c[1] is not None]
        fa = [c[2] for c in curve if c[1] is not None]
        ax.plot(fa, frr, marker=".", label=k)
    ax.axvline(result["target_fa_per_hour"], color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("symlog", linthresh=0.5)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("false accepts per hour (this keyword)")
    ax.set_ylabel("false-reject rate")
    s = best["settings"]
    quick = f", quick {s['quick_threshold']:g}" if s.get("quick_threshold") is not None else ""
    ax.set_title(
        f"DET: window {s['average_window_ms']} ms, min count {s['minimum_count']}, "
        f"suppression {s['suppression_ms']} ms{quick}; {result['hours'] * 60:.0f} min of audio",
        fontsize=9,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
