"""Server-rendered SVG: a hostname's split over time, measured against intended (pure: a string out).

One line per cluster (or record set): the intended share as a dashed step line (it changes when a policy or
a shift step is applied), the measured shares as dots joined by a solid line. Accessible like records.chart:
`role="img"`, a `<title>`, and a `<desc>` stating every measured point, so a screen reader and a test read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 120, 12, 28
# colour-blind-safe (Tableau 10's first ones), repeated if there are more clusters
COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")


def split_timeline_svg(
    measured: Sequence[tuple[datetime, Mapping[str, float]]],
    intended: Sequence[tuple[datetime, Mapping[str, float]]],
    title: str,
    *,
    now: datetime,
) -> str:
    """`measured`: (time, label -> observed %) per measurement; `intended`: (time, label -> %) from which
    on that split was meant (in time order). Percentages 0-100. Empty input draws an empty frame."""
    labels = sorted({k for _, shares in [*measured, *intended] for k in shares})
    times = [t for t, _ in [*measured, *intended]]
    t0 = min(times, default=now)
    t1 = max([*times, now])
    span = max((t1 - t0).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: datetime) -> float:
        return round(LEFT + plot_w * (t - t0).total_seconds() / span, 1)

    def y(pct: float) -> float:
        return round(TOP + plot_h * (1 - max(0.0, min(100.0, pct)) / 100), 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'class="split-timeline" aria-labelledby="tl-title tl-desc">',
        f'<title id="tl-title">{escape(title)}</title>',
    ]
    desc = []
    for t, shares in measured:
        desc.append(
            t.strftime("%H:%M:%S") + ": " + ", ".join(f"{k} {shares[k]:.0f} %" for k in sorted(shares))
        )
    parts.append(f'<desc id="tl-desc">{escape("; ".join(desc) or "nothing measured yet")}</desc>')
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick)}" y2="{y(tick)}" stroke="#ddd"/>'
            f'<text x="{LEFT - 4}" y="{y(tick) + 4}" font-size="10" text-anchor="end">{tick}</text>'
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="10">{t0.strftime("%H:%M:%S")}</text>'
        f'<text x="{LEFT + plot_w}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
        f"{t1.strftime('%H:%M:%S')}</text>"
    )
    for n, label in enumerate(labels):
        colour = COLOURS[n % len(COLOURS)]
        steps = [(t, s[label]) for t, s in intended if label in s]
        if steps:
            points = []
            for i, (t, pct) in enumerate(steps):
                end = steps[i + 1][0] if i + 1 < len(steps) else t1
                points += [f"{x(t)},{y(pct)}", f"{x(end)},{y(pct)}"]
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                f'stroke-dasharray="4 3" stroke-width="1.5"/>'
            )
        dots = [(t, s[label]) for t, s in measured if label in s]
        if dots:
            parts.append(
                f'<polyline points="{" ".join(f"{x(t)},{y(p)}" for t, p in dots)}" fill="none" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
            parts += [f'<circle cx="{x(t)}" cy="{y(p)}" r="3" fill="{colour}"/>' for t, p in dots]
        ly = TOP + 14 * n + 6
        parts.append(
            f'<rect x="{WIDTH - RIGHT + 8}" y="{ly}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{WIDTH - RIGHT + 22}" y="{ly + 9}" font-size="11">{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{WIDTH - RIGHT + 8}" y="{HEIGHT - 22}" font-size="9">dashed: intended</text>'
        f'<text x="{WIDTH - RIGHT + 8}" y="{HEIGHT - 10}" font-size="9">solid: measured</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["split_timeline_svg"]
