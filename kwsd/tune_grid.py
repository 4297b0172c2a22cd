"""The grid that ``kwsd tune`` replays the smoother over, kept apart from the search.

``kwsd``'s command line shows these defaults in ``kwsd tune --help``; in a module of their own
they do not bring the tuner (its streams, its false-accept budget, ``statistics`` and
``random``) into every ``kwsd run`` that builds the same parser.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .recognize import SmootherSettings

# From 0.5 up: a keyword is reported only when the model gives it at least half of the
# probability.  Below that, a label can come out on top with most of the probability spread
# over the other classes; tuning audio without a false accept cannot show the risk (a model
# tuned down to 0.3 reported the demo recording's "yes" as "left" at 0.40).
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)


@dataclass
class Grid:
    """Every smoother setting ``kwsd tune`` tries; thresholds are chosen per keyword at each point."""

    windows: tuple[int, ...] = (300, 500, 800)
    minimum_counts: tuple[int, ...] = (3, 6)
    suppressions: tuple[int, ...] = (1500,)
    thresholds: tuple[float, ...] = THRESHOLDS
    # the quick rule (recognize.py) at each of these thresholds, besides none; off by default, since
    # tuning audio rarely holds the short words it fires on (models/README.md, "A quick profile")
    quick_thresholds: tuple[float, ...] = ()
    quick_window_ms: int = SmootherSettings.quick_window_ms

    def check(self) -> None:
        """ValueError naming the first flag with a value the config refuses: what ``kwsd tune``
        writes, ``kwsd run`` must load (a minimum count of 0 would be chosen, written and refused)."""
        from dataclasses import fields

        from .config import RecognizeConfig
        from .limits import check_ranges

        limits = {f.name: f.metadata for f in fields(RecognizeConfig)}
        grid = (
            ("--windows", "average_window_ms", self.windows),
            ("--minimum-counts", "minimum_count", self.minimum_counts),
            ("--suppressions", "suppression_ms", self.suppressions),
            ("--quick-window-ms", "quick_window_ms", (self.quick_window_ms,)),
        )
        check_ranges((flag, v, limits[key]["min"], limits[key]["max"]) for flag, key, values in grid for v in values)

    @property
    def points(self) -> list[tuple]:
        """(window, minimum count, suppression, quick threshold or None) for every grid point."""
        quick = (None, *self.quick_thresholds)
        return list(itertools.product(self.windows, self.minimum_counts, self.suppressions, quick))
