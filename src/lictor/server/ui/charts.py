"""Small SVG charts, computed on the server (no chart library, no inline script).

Pure functions from counts to SVG markup descriptions; the templates draw them with
attributes only (the Content-Security-Policy forbids inline ``style``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Bar", "BarChart", "stacked_bars"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle of a stacked bar: its series (a CSS class), place and size."""

    series: str
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    """Rectangles of a stacked bar chart plus its axis facts."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    maximum: int
    total: int


def stacked_bars(
    buckets: Sequence[tuple[str, Mapping[str, int]]],
    series: Sequence[str],
    *,
    width: int = 720,
    height: int = 160,
) -> BarChart:
    """Lay out one stacked bar per bucket, series stacked bottom-up in the given order.

    Args:
        buckets: (label, counts per series) in x order, e.g. one per minute.
        series: The series to draw, bottom first; counts of other keys are ignored.
        width: Width of the drawing, in SVG user units.
        height: Height of the drawing; the tallest bar fills it.
    """
    totals = [sum(counts.get(s, 0) for s in series) for _, counts in buckets]
    maximum = max(totals, default=0)
    slot = width / max(len(buckets), 1)
    bar_width = max(slot * 0.8, 1.0)
    rects: list[Bar] = []
    for index, (label, counts) in enumerate(buckets):
        base = float(height)
        for name in series:
            count = counts.get(name, 0)
            if count <= 0 or maximum == 0:
                continue
            bar_height = height * count / maximum
            base -= bar_height
            rects.append(
                Bar(
                    series=name,
                    x=round(index * slot + (slot - bar_width) / 2, 2),
                    y=round(base, 2),
                    width=round(bar_width, 2),
                    height=round(bar_height, 2),
                    label=f"{label}: {count} {name}",
                )
            )
    return BarChart(width, height, tuple(rects), maximum, sum(totals))
