"""Finding a run among hundreds: the facets a run is filtered by, and the filter.

A run's facets come from its summary (``pedsense.runsummary.RunSummary``): its model type, its
status word, its tags (``pedsense.runlabels``), the data it trained on and the sweep it is a
trial of. A filter keeps the runs that match every facet it names (within a facet, any of the
values picked), and hides archived runs unless asked to show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from pedsense.runsummary import RunSummary

FACETS = ("type", "status", "tag", "dataset", "sweep")


def facet_values(summary: RunSummary) -> dict[str, tuple[str, ...]]:
    """``{facet: the run's values}`` (a run has several tags, one or no value of the rest)."""
    return {"type": (summary.model_type,), "status": (summary.status,), "tag": summary.labels.tags,
            "dataset": (summary.dataset,) if summary.dataset else (),
            "sweep": (summary.sweep,) if summary.sweep else ()}


def facet_options(summaries: Iterable[RunSummary]) -> dict[str, list[str]]:
    """``{facet: every value some run has}``, sorted: what a filter can pick from."""
    options: dict[str, set[str]] = {facet: set() for facet in FACETS}
    for summary in summaries:
        for facet, values in facet_values(summary).items():
            options[facet].update(values)
    return {facet: sorted(values) for facet, values in options.items()}


@dataclass(frozen=True)
class RunFilter:
    """``picked``: ``{facet: values}`` (an empty or missing facet keeps every run);
    ``archived``: show archived runs too."""

    picked: Mapping[str, Sequence[str]] = field(default_factory=dict)
    archived: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.picked) - set(FACETS)
        if unknown:
            raise ValueError(f"Unknown facet(s) {sorted(unknown)}; filter by {', '.join(FACETS)}.")

    def matches(self, summary: RunSummary) -> bool:
        if summary.labels.archived and not self.archived:
            return False
        values = facet_values(summary)
        return all(not wanted or set(values[facet]) & set(wanted) for facet, wanted in self.picked.items())

    def apply(self, summaries: Iterable[RunSummary]) -> list[RunSummary]:
        """The runs that match, in the order given."""
        return [s for s in summaries if self.matches(s)]
