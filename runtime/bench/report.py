"""A benchmark figure beside its baseline, and how to print a table of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured figure and the baseline measured in the same run.

    ``ratio`` is always "how many times better than the baseline" when
    ``higher_is_better`` is set, and ``value / baseline`` otherwise (lower is
    better, e.g. latency: 1.5 means 1.5× the baseline's latency).

    A figure whose subject is not built yet has ``value=None`` and says why in
    ``pending``: its baseline is measured already, so the target is fixed beside it.
    """

    name: str
    unit: str
    value: float | None
    baseline: float
    baseline_name: str
    higher_is_better: bool
    target: str = ""
    absolute_target: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    pending: str = ""  # why there is no value yet (value is None)

    @property
    def ratio(self) -> float | None:
        if self.value is None:
            return None
        if self.baseline == 0:
            return float("inf")
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def moved(counters: dict[str, int], prefixes: tuple[str, ...] = ()) -> str:
    """The counters that moved (of ``prefixes``, if given), short-named, for a progress line.

        moved({"checkpoint.batches": 3, "checkpoint.fenced": 0})   # "batches=3"
    """
    return ", ".join(f"{name.split('.', 1)[-1]}={value}" for name, value in counters.items()
                     if value and name.startswith(prefixes or ""))


def _fmt(value: float) -> str:
    if value >= 10_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def table(figures: list[Figure]) -> str:
    header = ("figure", "value", "baseline", "ratio", "baseline is", "target")
    rows = [header]
    for fig in figures:
        rows.append((
            fig.name,
            f"{_fmt(fig.value)} {fig.unit}" if fig.value is not None else f"pending: {fig.pending}",
            f"{_fmt(fig.baseline)} {fig.unit}",
            f"{fig.ratio:.2f}×" if fig.ratio is not None else "—",
            fig.baseline_name,
            fig.target,
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
