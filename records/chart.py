"""Server-rendered SVG: the intended-vs-observed distribution chart of a verification.

Pure: a string of SVG out, no JavaScript, no third-party file, nothing fetched. Bars run horizontally, one
pair per record set (intended, observed), with the label on its own line above: a long cluster name never
collides with its neighbour, and the chart stays readable in a 390 px wide phone (the viewBox is 400 units
wide and the element takes 100 % of its container, so 12-unit text renders at about 12 px there).

Accessible: `role="img"`, a `<title>` and a `<desc>` that states every number the bars show, so a screen
reader (and a test) gets the chart without seeing it; colours are a colour-blind-safe pair, and every bar
carries its value as text as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH = 400
LEFT = 16  # bars start here (room for the centred "0 %" tick label)
RIGHT = 56  # room after a full bar for its value text ("100.0 %")
LEGEND_H = 28
LABEL_H = 16  # the record set's label line above its bars
BAR_H = 14
BAR_GAP = 3
GROUP_GAP = 12
AXIS_H = 34  # tick labels and the axis title under the bars
TICKS = (0, 25, 50, 75, 100)
INTENDED_COLOUR = "#4c78a8"  # blue and orange stay distinct in every common colour-vision deficiency
OBSERVED_COLOUR = "#f58518"


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _pct(value: float) -> str:
    return f"{value:.0f} %" if float(value).is_integer() else f"{value:.1f} %"


def distribution_svg(
    labels: Sequence[str],
    intended: Sequence[float],
    observed: Sequence[float] | None,
    title: str,
    *,
    id_prefix: str = "",
) -> str:
    """An SVG bar chart of intended against observed shares, in percent (0-100), one pair per label.

    The same labels in the same order as the two lists; a value outside 0-100 raises `ValueError` (a share
    cannot be more than all answers). `id_prefix` keeps element ids unique when a page holds several charts
    (by default they derive from the title and labels). The result is markup, escaped throughout: a
    template outputs it as is. `observed` None draws the intended shares alone (the editor's split, before
    anything is measured).
    """
    intended_only = observed is None
    if observed is None:
        observed = intended
    if not len(labels) == len(intended) == len(observed):
        raise ValueError(
            f"{len(labels)} labels, {len(intended)} intended and {len(observed)} observed values: "
            "each label needs one of each"
        )
    for label, a, b in zip(labels, intended, observed, strict=True):
        for what, v in (("intended", a), ("observed", b)):
            if not 0 <= v <= 100:
                raise ValueError(f"{label}: {what} share {v} is not a percentage from 0 to 100")
    uid = (
        id_prefix
        or "dist-" + hashlib.blake2s("\x00".join([title, *labels]).encode(), digest_size=5).hexdigest()
    )
    plot_w = WIDTH - LEFT - RIGHT
    series = ("intended",) if intended_only else ("intended", "observed")
    group_h = LABEL_H + len(series) * BAR_H + (len(series) - 1) * BAR_GAP + GROUP_GAP
    top = LEGEND_H
    bars_h = max(1, len(labels)) * group_h
    height = top + bars_h + AXIS_H

    def x_of(pct: float) -> float:
        return LEFT + plot_w * pct / 100

    description = (
        "; ".join(
            f"{label}: intended {_pct(a)}" + ("" if intended_only else f", observed {_pct(b)}")
            for label, a, b in zip(labels, intended, observed, strict=True)
        )
        or "no record sets"
    )
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-labelledby="{uid}-title {uid}-desc" class="distribution-chart" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{uid}-title">{escape(title)}</title>',
        f'<desc id="{uid}-desc">{escape(description)}.</desc>',
        # legend
        '<g class="legend">',
        f'<rect x="{LEFT}" y="8" width="12" height="12" fill="{INTENDED_COLOUR}"/>',
        f'<text x="{LEFT + 16}" y="18">intended</text>',
        *(
            ()
            if intended_only
            else (
                f'<rect x="{LEFT + 90}" y="8" width="12" height="12" fill="{OBSERVED_COLOUR}"/>',
                f'<text x="{LEFT + 106}" y="18">observed</text>',
            )
        ),
        "</g>",
        # grid: vertical lines at the ticks, behind the bars
        '<g class="grid" stroke="#d0d0d0" stroke-width="1">',
        *(f'<line x1="{x_of(t):.1f}" y1="{top}" x2="{x_of(t):.1f}" y2="{top + bars_h}"/>' for t in TICKS),
        "</g>",
        '<g class="bars">',
    ]
    for i, (label, a, b) in enumerate(zip(labels, intended, observed, strict=True)):
        y = top + i * group_h
        out.append(f'<g class="category" data-label="{_attr(label)}">')
        out.append(f'<text class="category-label" x="{LEFT}" y="{y + 12}">{escape(label)}</text>')
        for j, (kind, value, colour) in enumerate(
            (("intended", a, INTENDED_COLOUR), ("observed", b, OBSERVED_COLOUR))[: len(series)]
        ):
            by = y + LABEL_H + j * (BAR_H + BAR_GAP)
            width = plot_w * value / 100
            out.append(
                f'<rect class="bar {kind}" x="{LEFT}" y="{by}" width="{width:.2f}" height="{BAR_H}" '
                f'fill="{colour}" data-value="{value:g}">'
                f"<title>{escape(label)}: {kind} {_pct(value)}</title></rect>"
            )
            out.append(
                f'<text class="value {kind}" x="{LEFT + width + 4:.2f}" y="{by + BAR_H - 3}">'
                f"{_pct(value)}</text>"
            )
        out.append("</g>")
    out.append("</g>")
    axis_y = top + bars_h
    out.append('<g class="axis" text-anchor="middle" fill="#444">')
    out.extend(f'<text x="{x_of(t):.1f}" y="{axis_y + 12}">{t} %</text>' for t in TICKS)
    out.append(
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.1f}" y="{axis_y + 28}">share of answers (%)</text>'
    )
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
