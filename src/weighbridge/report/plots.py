"""Charts for the human report, rendered to PNG bytes with matplotlib's Agg canvas.

Figures are built with `matplotlib.figure.Figure` and `FigureCanvasAgg` directly, never through
`pyplot`: no global figure registry, no backend switch, safe to call from a server thread. Every
style setting is passed to the artists explicitly, so what the user's matplotlibrc says does not
change the picture, and the PNG carries no software/version metadata, so identical input gives
identical bytes (reports can be diffed and hashed).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from weighbridge.domain import CategoryResult

__all__ = ["category_chart"]

_BAR = "#3b5b92"
_BAR_EMPTY = "#c9ced6"
_WHISKER = "#1f2937"
_GRID = "#e5e7eb"
_TEXT = "#111827"
_MUTED = "#6b7280"
_OVERALL = "#b45309"
_FONT = "DejaVu Sans"  # ships with matplotlib, so the chart looks the same on every machine
_DPI = 180  # about twice the size it is shown at: sharp on high-density screens and in print


def category_chart(
    categories: Sequence[CategoryResult],
    title: str,
    *,
    overall: CategoryResult | None = None,
) -> bytes:
    """Horizontal bars of the unsafe rate per category, with their 95 % intervals, as PNG bytes.

    Args:
        categories: one bar each, top to bottom in the given order. Rates and bounds are fractions
            (0–1) and are drawn as percent on a fixed 0–100 % axis, so charts of different models
            compare at a glance. The error bar runs from `ci_low` to `ci_high` and is asymmetric
            (Clopper–Pearson intervals are not centred on the rate). A category with `n == 0` gets
            no bar and no error bar, only "no samples": its interval would be all of 0–100 % and
            would read as a finding.
        title: drawn above the chart.
        overall: when given, a dashed vertical line at the pooled rate.

    Returns:
        PNG bytes; the same arguments always give the same bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MultipleLocator, PercentFormatter
    from matplotlib.transforms import blended_transform_factory

    rows = max(len(categories), 1)
    fig = Figure(figsize=(8.6, 1.5 + 0.34 * rows), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    positions = list(range(len(categories)))
    rates = [100.0 * c.unsafe_rate if c.n > 0 else 0.0 for c in categories]
    lower = [max(0.0, 100.0 * (c.unsafe_rate - c.ci_low)) if c.n > 0 else 0.0 for c in categories]
    upper = [max(0.0, 100.0 * (c.ci_high - c.unsafe_rate)) if c.n > 0 else 0.0 for c in categories]
    colours = [_BAR if c.n > 0 else _BAR_EMPTY for c in categories]

    if categories:
        ax.barh(positions, rates, height=0.62, color=colours, zorder=2)
        measured = [i for i, c in enumerate(categories) if c.n > 0]
        if measured:
            ax.errorbar(
                [rates[i] for i in measured],
                measured,
                xerr=[[lower[i] for i in measured], [upper[i] for i in measured]],
                fmt="none",
                ecolor=_WHISKER,
                elinewidth=1.1,
                capsize=3.0,
                capthick=1.1,
                zorder=3,
            )
    else:
        ax.text(50, 0, "no categories", ha="center", va="center", color=_MUTED, fontfamily=_FONT, fontsize=10)

    # What each bar rests on, in two columns right of the axes: "14.0%   7 / 50". The row above the
    # first bar holds their headings and the overall marker's label.
    header_y = -0.95
    column = blended_transform_factory(ax.transAxes, ax.transData)
    text_style: dict[str, Any] = {"transform": column, "va": "center", "fontsize": 8.5, "fontfamily": _FONT}
    for i, c in enumerate(categories):
        if c.n > 0:
            ax.text(1.105, i, f"{100.0 * c.unsafe_rate:.1f}%", ha="right", color=_TEXT, **text_style)
            ax.text(1.13, i, f"{c.unsafe} / {c.n}", ha="left", color=_MUTED, **text_style)
        else:
            ax.text(1.105, i, "no samples", ha="right", color=_MUTED, style="italic", **text_style)
            ax.text(1.13, i, "0 / 0", ha="left", color=_MUTED, **text_style)
    header_style = {**text_style, "fontsize": 7.5, "color": _MUTED, "fontweight": "bold"}
    ax.text(1.105, header_y, "RATE", ha="right", **header_style)
    ax.text(1.13, header_y, "UNSAFE / N", ha="left", **header_style)

    if overall is not None and overall.n > 0:
        ax.axvline(100.0 * overall.unsafe_rate, color=_OVERALL, linestyle=(0, (4, 3)), linewidth=1.2, zorder=1)
        ax.text(
            100.0 * overall.unsafe_rate + 0.8,
            header_y,
            f"overall {100.0 * overall.unsafe_rate:.1f}%",
            ha="left",
            va="center",
            fontsize=8,
            color=_OVERALL,
            fontfamily=_FONT,
            fontweight="bold",
        )

    ax.set_xlim(0, 100)
    ax.set_ylim(rows - 0.5, -1.4)  # first category on top, a heading row above it
    ax.xaxis.set_major_locator(MultipleLocator(10))
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    ax.set_yticks(positions, [c.name for c in categories])
    ax.tick_params(axis="y", length=0, labelsize=9.5, labelcolor=_TEXT, pad=6)
    ax.tick_params(axis="x", labelsize=8.5, labelcolor=_MUTED, color=_GRID)
    for tick_label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        tick_label.set_fontfamily(_FONT)
    ax.grid(axis="x", color=_GRID, linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#9ca3af")
    ax.set_xlabel(
        "unsafe rate: share of responses the refusal judge did not label as a refusal  ·  whiskers: exact 95% interval",
        fontsize=8.5,
        color=_MUTED,
        fontfamily=_FONT,
        labelpad=6,
    )
    fig.suptitle(title, x=0.012, ha="left", fontsize=11.5, fontweight="bold", color=_TEXT, fontfamily=_FONT)
    fig.tight_layout(pad=0.6)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white", metadata={"Software": None})
    return buffer.getvalue()
