"""How ``kwsd tune`` shares the false accepts that its target allows among the keywords.

The target allows floor(target per hour x hours of tuning audio) false accepts in all. Split
evenly, each keyword's share rounds down: over 3.3 hours at 3 per hour ten keywords would each
get 0.99, so none could have one, and the recall those ten allowed false accepts could buy would
be lost. Instead the thresholds are chosen together, as a small knapsack over the keywords'
measured curves: the combination that misses the fewest keywords within the allowed count, of
equals the fewest false accepts, then the highest thresholds (the most margin against false
accepts that the tuning audio did not happen to contain)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """One threshold of one keyword, as measured on the tuning audio."""

    threshold: float
    false_accepts: int
    misses: float  # false-reject rate x the keyword's spoken instances


def allowed_false_accepts(target_per_hour: float, hours: float) -> int:
    return math.floor(target_per_hour * hours + 1e-9)


def share(options: dict[str, list[Option]], allowed: int) -> dict[str, Option]:
    """One option per keyword: the fewest misses with at most ``allowed`` false accepts in all;
    if no combination stays within it, the one that exceeds it least."""
    # states: total false accepts -> (misses, -sum of thresholds, choice so far); few states, as
    # false accepts at usable thresholds are few
    states: dict[int, tuple[float, float, dict[str, Option]]] = {0: (0.0, 0.0, {})}
    fewest = 0  # the fewest false accepts the keywords so far can have
    for keyword, opts in options.items():
        fewest += min(o.false_accepts for o in opts)
        cap = max(allowed, fewest)  # a state above both can lead to neither answer
        nxt: dict[int, tuple[float, float, dict[str, Option]]] = {}
        for total, (misses, margin, choice) in states.items():
            for o in opts:
                key = total + o.false_accepts
                if key > cap:
                    continue
                cand = (misses + o.misses, margin - o.threshold, {**choice, keyword: o})
                if key not in nxt or cand[:2] < nxt[key][:2]:
                    nxt[key] = cand
        states = nxt
    within = [(misses, total, margin) for total, (misses, margin, _) in states.items() if total <= allowed]
    best = min(within)[1] if within else min(states)  # else: the fewest false accepts there are
    return states[best][2]
