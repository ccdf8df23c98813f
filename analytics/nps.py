"""Net Promoter Score by group: promoters (9-10) minus detractors (0-6), in percent.

Pure: the caller reads the answers (records/surveys.py). NPS is a count, not an
estimate with a method to get right, so it is computed here; below `MIN_ANSWERS` a
group's figure is shown with its count and said to be too small to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Fewer answers than this: one answer moves the score by 10 points or more.
MIN_ANSWERS = 10
PROMOTER_FROM = 9
DETRACTOR_UP_TO = 6


@dataclass(frozen=True)
class NpsGroup:
    group: str
    answers: int
    promoters: int
    passives: int
    detractors: int

    @property
    def nps(self) -> float | None:
        """-100 to 100; None without answers."""
        if not self.answers:
            return None
        return 100 * (self.promoters - self.detractors) / self.answers

    @property
    def enough(self) -> bool:
        return self.answers >= MIN_ANSWERS


def nps_group(group: str, scores: Iterable[int]) -> NpsGroup:
    listed = list(scores)
    promoters = sum(1 for score in listed if score >= PROMOTER_FROM)
    detractors = sum(1 for score in listed if score <= DETRACTOR_UP_TO)
    return NpsGroup(group, len(listed), promoters, len(listed) - promoters - detractors, detractors)


def nps_by(facts: Iterable[tuple[str, int]], order: Iterable[str] = ()) -> list[NpsGroup]:
    """One group per key of (key, score) pairs: keys in `order` first, in that order
    (each shown even without answers), then the others alphabetically."""
    scores: dict[str, list[int]] = {key: [] for key in order}
    for key, score in facts:
        scores.setdefault(key, []).append(score)
    known = list(dict.fromkeys(order))
    rest = sorted(key for key in scores if key not in known)
    return [nps_group(key, scores[key]) for key in [*known, *rest]]


CSV_HEADER = ["group", "answers", "promoters", "passives", "detractors", "nps", "enough"]


def csv_rows(groups: Iterable[NpsGroup]) -> list[list[str]]:
    return [
        [
            g.group,
            str(g.answers),
            str(g.promoters),
            str(g.passives),
            str(g.detractors),
            "" if g.nps is None else f"{g.nps:.1f}",
            "yes" if g.enough else "no",
        ]
        for g in groups
    ]
