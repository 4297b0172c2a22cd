"""How far a measured rate can be from the true one: exact 95% intervals.

A stream evaluation counts rare events: 3 false accepts in an hour, 40 misses among 160
keywords. Whether one model or setting is better than another, and whether a target such as
"at most 0.5 false accepts per hour" is met at all, depends on how much those counts could
move by chance.  No false accept in 30 minutes still allows 7.4 per hour at 95%
confidence; ten in 108.5 minutes, anything from 2.7 to 10.2.  Both intervals are the
exact (Clopper-Pearson / Garwood) ones, which never claim more certainty than the data has.
"""

from __future__ import annotations

LEVEL = 0.95


def proportion_interval(events: int, trials: int, level: float = LEVEL) -> tuple[float, float] | None:
    """Exact interval for a proportion (a false-reject rate: ``events`` misses of ``trials``)."""
    if trials <= 0:
        return None
    from scipy.stats import beta

    alpha = 1.0 - level
    low = 0.0 if events == 0 else float(beta.ppf(alpha / 2, events, trials - events + 1))
    high = 1.0 if events == trials else float(beta.ppf(1 - alpha / 2, events + 1, trials - events))
    return low, high


def rate_interval(events: int, hours: float, level: float = LEVEL) -> tuple[float, float] | None:
    """Exact interval for a Poisson rate (false accepts per hour: ``events`` in ``hours``)."""
    if hours <= 0:
        return None
    from scipy.stats import chi2

    alpha = 1.0 - level
    low = 0.0 if events == 0 else float(chi2.ppf(alpha / 2, 2 * events)) / 2
    high = float(chi2.ppf(1 - alpha / 2, 2 * events + 2)) / 2
    return low / hours, high / hours


def hours_to_show(rate_per_hour: float, level: float = LEVEL) -> float:
    """How many hours without a single event it takes before the interval's top is ``rate_per_hour``."""
    from scipy.stats import chi2

    return float(chi2.ppf(level + (1.0 - level) / 2, 2)) / 2 / rate_per_hour
