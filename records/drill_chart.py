"""Server-rendered SVG: what each nameserver answered during a failover drill, over time (pure: a string out).

One lane per nameserver; each sample is a bar coloured by the side it answered (the primary, the secondary,
something else, nothing), with vertical marks where the primary was marked unhealthy and restored, and where
every nameserver had switched and returned. Accessible like records.timeline_chart: `role="img"`, a `<title>`
and a `<desc>` stating when each nameserver changed sides, so a screen reader and a test read it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

from records.drill import NO_ANSWER, OTHER_ANSWER, PRIMARY_ANSWER, SECONDARY_ANSWER

WIDTH, LANE, LEFT, RIGHT, TOP, BOTTOM = 640, 22, 150, 16, 12, 44
# colour-blind-safe (Tableau 10's blue and orange), grey for a mix, red for no answer
SIDE_COLOURS = {
    PRIMARY_ANSWER: "#4c78a8",
    SECONDARY_ANSWER: "#f58518",
    OTHER_ANSWER: "#999999",
    NO_ANSWER: "#e45756",
}


def drill_svg(
    points: Sequence[tuple[float, str, str]],
    marks: Sequence[tuple[float, str]],
    title: str,
    *,
    end: float = 0.0,
) -> str:
    """`points`: (seconds, nameserver, side) as records.drill.timeline_points returns them; `marks`:
    (seconds, label) drawn as vertical lines ("primary marked unhealthy", "restored", ...); `end`: the
    drill's length in seconds when no sample reaches it. Empty input draws an empty frame."""
    lanes = sorted({ns for _, ns, _ in points})
    height = TOP + BOTTOM + LANE * max(len(lanes), 1)
    span = max([end, *(t for t, _, _ in points), *(t for t, _ in marks), 1.0])
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return round(LEFT + plot_w * max(0.0, t) / span, 1)

    labels = _place_labels(marks, x)
    height += 10 * max((row for *_, row, _end in labels), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'class="drill-chart" aria-labelledby="drill-title drill-desc">',
        f'<title id="drill-title">{escape(title)}</title>',
    ]
    desc = []
    for ns in lanes:
        changes, last = [], None
        for t, name, side in points:
            if name == ns and side != last:
                changes.append(f"{side} from {t:.1f} s")
                last = side
        desc.append(f"{ns}: " + ", ".join(changes))
    desc += [f"{label} at {t:.1f} s" for t, label in marks]
    parts.append(f'<desc id="drill-desc">{escape("; ".join(desc) or "nothing sampled")}</desc>')
    for n, ns in enumerate(lanes):
        y = TOP + LANE * n
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + LANE / 2 + 4}" font-size="10" text-anchor="end">'
            f"{escape(ns)}</text>"
        )
        mine = [(t, side) for t, name, side in points if name == ns]
        for i, (t, side) in enumerate(mine):
            t_next = mine[i + 1][0] if i + 1 < len(mine) else max(t, span)
            # the last sample gets a sliver of its own, or the answer the drill ended on would not show
            w = max(x(t_next) - x(t), 1.0) if i + 1 < len(mine) else max(x(t_next) - x(t), 8.0)
            parts.append(
                f'<rect x="{x(t)}" y="{y + 3}" width="{round(w, 1)}" height="{LANE - 6}" '
                f'fill="{SIDE_COLOURS.get(side, "#999999")}"><title>{escape(f"{ns}: {side} at {t:.1f} s")}'
                "</title></rect>"
            )
    bottom = TOP + LANE * max(len(lanes), 1)
    for t, label, x0, x1, row, anchor_end in labels:
        anchor = ' text-anchor="end"' if anchor_end else ""
        parts.append(
            f'<line x1="{x(t)}" x2="{x(t)}" y1="{TOP}" y2="{bottom + 10 * row}" stroke="#333" '
            'stroke-dasharray="3 2"/>'
            f'<text x="{x1 if anchor_end else x0}" y="{bottom + 12 + 10 * row}" font-size="9"{anchor}>'
            f"{escape(label)}</text>"
        )
    parts.append(
        f'<text x="{LEFT}" y="{height - 6}" font-size="10">0 s</text>'
        f'<text x="{LEFT + plot_w}" y="{height - 6}" font-size="10" text-anchor="end">{span:.1f} s</text>'
    )
    legend_x = LEFT + 60
    for side in (PRIMARY_ANSWER, SECONDARY_ANSWER, OTHER_ANSWER, NO_ANSWER):
        parts.append(
            f'<rect x="{legend_x}" y="{height - 15}" width="9" height="9" fill="{SIDE_COLOURS[side]}"/>'
            f'<text x="{legend_x + 12}" y="{height - 7}" font-size="9">{side}</text>'
        )
        legend_x += 80
    parts.append("</svg>")
    return "".join(parts)


def _place_labels(
    marks: Sequence[tuple[float, str]], x: Callable[[float], float]
) -> list[tuple[float, str, float, float, int, bool]]:
    """(t, label, from x, to x, row, anchored at its end) per mark: a label starts at its line (or ends there
    near the right edge) and drops a row when it would overlap one already placed, so marks a few tenths of
    a second apart stay readable."""
    placed: list[tuple[float, str, float, float, int, bool]] = []
    for t, label in sorted(marks):
        width = 5.0 * len(label)
        anchor_end = x(t) + 2 + width > WIDTH - 2
        x0, x1 = (x(t) - 2 - width, x(t) - 2) if anchor_end else (x(t) + 2, x(t) + 2 + width)
        row = 0
        while any(r == row and a < x1 and x0 < b for _t, _l, a, b, r, _e in placed):
            row += 1
        placed.append((t, label, x0, x1, row, anchor_end))
    return placed


__all__ = ["drill_svg"]
