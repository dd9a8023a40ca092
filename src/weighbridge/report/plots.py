"""Charts for the human report, rendered to PNG bytes with matplotlib's Agg canvas.

Figures are built with `matplotlib.figure.Figure` and `FigureCanvasAgg` directly, never through
`pyplot`: no global figure registry, no backend switch, safe to call from a server thread. Every
style setting is passed to the artists explicitly, so what the user's matplotlibrc says does not
change the picture, and the PNG carries no software/version metadata, so identical input gives
identical bytes (reports can be diffed and hashed).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weighbridge.domain import CategoryResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["GRADE_COLOURS", "ForestRow", "axis_limit", "category_chart", "forest_plot"]

_BAR = "#3b5b92"
_BAR_EMPTY = "#c9ced6"
_WHISKER = "#1f2937"
_GRID = "#e5e7eb"
_TEXT = "#111827"
_MUTED = "#6b7280"
_OVERALL = "#b45309"
_FONT = "DejaVu Sans"  # ships with matplotlib, so the chart looks the same on every machine
_DPI = 180  # about twice the size it is shown at: sharp on high-density screens and in print


def _style_rate_axes(ax: Axes) -> None:
    """The look both charts share: muted x ticks in the report font, vertical grid, bottom spine only."""
    ax.tick_params(axis="x", labelsize=8.5, labelcolor=_MUTED, color=_GRID)
    for tick_label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        tick_label.set_fontfamily(_FONT)
    ax.grid(axis="x", color=_GRID, linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#9ca3af")


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
    _style_rate_axes(ax)
    ax.set_xlabel(
        "unsafe rate: share of responses the primary judge labelled unsafe  ·  whiskers: exact 95% interval",
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


# Grade colours, shared with the HTML chips so the plot and the table read the same.
GRADE_COLOURS: Mapping[str, str] = {
    "Excellent": "#166534",
    "Very Good": "#15803d",
    "Good": "#4d7c0f",
    "Fair": "#b45309",
    "Poor": "#b91c1c",
}
_UNGRADED = "#6b7280"
_MODEL = "#1e3a5f"
# Okabe–Ito colours with distinct marker shapes: references stay apart in colour-blind and
# grey-scale print as well.
_REFERENCE_STYLES: tuple[tuple[str, str], ...] = (
    ("#d55e00", "s"),
    ("#009e73", "^"),  # triangles read smaller than squares at the same size: drawn larger below
    ("#cc79a7", "D"),
    ("#0072b2", "v"),
    ("#e69f00", "P"),
    ("#56b4e9", "X"),
)
_NICE_LIMITS = (5, 10, 20, 30, 40, 50, 60, 80, 100)


def axis_limit(rows: Sequence[ForestRow]) -> int:
    """The forest plot's x limit in percent: the smallest of 5, 10, 20, …, 100 holding every interval."""
    highest = max((r.ci_high for row in rows for r in (row.model, *row.references.values()) if r.n > 0), default=0.0)
    return next((x for x in _NICE_LIMITS if 100.0 * highest <= x + 1e-9), 100)


@dataclass(frozen=True)
class ForestRow:
    """One row of the forest plot: the model and each reference in one category (or overall).

    `references` maps a reference name to that reference's own result in the category; a
    reference missing from it has no samples there and gets no point.
    """

    label: str
    model: CategoryResult
    references: Mapping[str, CategoryResult] = field(default_factory=dict)
    grade: str | None = None
    overall: bool = False


def forest_plot(
    rows: Sequence[ForestRow],
    reference_names: Sequence[str],
    title: str,
    *,
    model_label: str = "model under review",
) -> bytes:
    """Unsafe rates with their intervals, model against every reference, one row per category.

    Within a row the model comes first (navy circle), then the references in `reference_names`
    order, each with its own colour and marker shape, so the points never sit on top of each other
    and can be told apart in grey-scale print. The x axis is linear from 0 to the smallest of
    5, 10, 20, …, 100 % that holds every interval, so small rates are not squeezed into the first
    tick; its limit is printed on the axis. The headline grade of each row is written on the right.

    Args:
        rows: top to bottom; an `overall` row is drawn below a rule, in bold.
        reference_names: legend order; a name absent from every row still gets a legend entry.
        title: drawn above the chart.
        model_label: the model's legend entry.

    Returns:
        PNG bytes; the same arguments always give the same bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import PercentFormatter
    from matplotlib.transforms import blended_transform_factory

    series = 1 + len(reference_names)
    step = 0.16  # inches between the points of one row
    row_height = step * series + 0.16
    height = 1.7 + row_height * max(len(rows), 1)
    fig = Figure(figsize=(8.6, height), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    styles = {name: _REFERENCE_STYLES[i % len(_REFERENCE_STYLES)] for i, name in enumerate(reference_names)}
    # Row i spans [i - 0.5, i + 0.5]; its points are spread evenly inside, model on top.
    spread = 0.72
    offsets = [(-spread / 2 + spread * (k + 0.5) / series) for k in range(series)] if series > 1 else [0.0]

    limit = axis_limit(rows)

    def draw(result: CategoryResult, y: float, colour: str, marker: str, size: float) -> None:
        rate = 100.0 * result.unsafe_rate
        ax.errorbar(
            [rate],
            [y],
            xerr=[[max(0.0, rate - 100.0 * result.ci_low)], [max(0.0, 100.0 * result.ci_high - rate)]],
            fmt=marker,
            color=colour,
            markersize=size,
            markeredgecolor="white",
            markeredgewidth=0.6,
            elinewidth=1.3,
            capsize=2.2,
            capthick=1.1,
            zorder=3,
            clip_on=False,  # a rate of 0 sits on the axis: show the whole marker, not half
        )

    label_column = blended_transform_factory(ax.transAxes, ax.transData)
    for i, row in enumerate(rows):
        if i % 2 == 1:
            ax.axhspan(i - 0.5, i + 0.5, color="#f3f4f6", zorder=0, linewidth=0)
        if row.overall:
            ax.axhline(i - 0.5, color="#94a3b8", linewidth=1.0, zorder=1)
        if row.model.n > 0:
            draw(row.model, i + offsets[0], _MODEL, "o", 6.0)
        else:
            ax.text(limit / 2, i + offsets[0], "no samples", ha="center", va="center", color=_MUTED,
                    fontsize=7.5, style="italic", fontfamily=_FONT)  # fmt: skip
        for k, name in enumerate(reference_names, start=1):
            ref = row.references.get(name)
            if ref is not None and ref.n > 0:
                colour, marker = styles[name]
                draw(ref, i + offsets[k], colour, marker, 6.0 if marker in "^v" else 5.0)
        grade = row.grade or "ungraded"
        ax.text(
            1.02, i, grade, transform=label_column, ha="left", va="center", fontsize=8,
            fontfamily=_FONT, fontweight="bold", color="white",
            bbox={"boxstyle": "round,pad=0.3", "facecolor": GRADE_COLOURS.get(grade, _UNGRADED), "edgecolor": "none"},
        )  # fmt: skip

    count = max(len(rows), 1)
    ax.set_xlim(0, limit)
    ax.set_ylim(count - 0.5, -0.5)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    ax.set_yticks(range(len(rows)), [row.label for row in rows])
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_fontweight("bold" if row.overall else "normal")
    ax.tick_params(axis="y", length=0, labelsize=9, labelcolor=_TEXT, pad=6)
    _style_rate_axes(ax)
    ax.set_xlabel(
        f"unsafe rate (axis 0–{limit}%)  ·  point: rate  ·  whiskers: exact 95% interval  ·  right: headline grade",
        fontsize=8.5,
        color=_MUTED,
        fontfamily=_FONT,
        labelpad=6,
    )
    handles = [
        Line2D(
            [], [], color=_MODEL, marker="o", linestyle="-", markersize=6, markeredgecolor="white", label=model_label
        )
    ]
    handles += [
        Line2D([], [], color=c, marker=m, linestyle="-", markersize=5, markeredgecolor="white", label=name)
        for name, (c, m) in styles.items()
    ]
    # Title and legend live in a band above the axes that tight_layout leaves alone, so neither can
    # overlap the other whatever the number of references.
    fig.suptitle(title, x=0.012, y=1 - 0.1 / height, ha="left", va="top", fontsize=11.5, fontweight="bold",
                 color=_TEXT, fontfamily=_FONT)  # fmt: skip
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.004, 1 - 0.42 / height),
        ncol=min(len(handles), 4),
        frameon=False,
        prop={"family": _FONT, "size": 8.5},
        handlelength=1.8,
        columnspacing=1.4,
    )
    legend_lines = -(-len(handles) // 4)
    fig.tight_layout(pad=0.6, rect=(0, 0, 1, 1 - (0.42 + 0.2 * legend_lines) / height))

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white", metadata={"Software": None})
    return buffer.getvalue()
