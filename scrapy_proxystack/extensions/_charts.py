"""The report's charts: inline SVG drawn from the report data, nothing fetched.

Each chart is a few lines of SVG; every value from the crawl is escaped.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Final

__all__ = ["COLORS", "fmt_ms", "health_bars", "latency_chart", "legend", "stacked_bars"]

COLORS: Final = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def legend(names: list[str]) -> str:
    items = "".join(
        f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{escape(n)}</span>'
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def latency_chart(locale: str, latency: dict[str, Any]) -> str:
    """Histogram of one locale's latencies on a log scale, with p50/p95 markers."""
    buckets: list[list[float]] = latency.get("buckets") or []
    if not buckets:
        return ""
    width, height, pad = 320, 150, 24
    peak = max(n for _, n in buckets) or 1
    bar = (width - 2 * pad) / len(buckets)
    parts = [
        f'<svg role="img" aria-label="latency distribution {escape(locale)}" '
        f'width="{width}" height="{height + 30}" viewBox="0 0 {width} {height + 30}">'
    ]
    for i, (_upper, n) in enumerate(buckets):
        h = (height - pad) * n / peak
        x = pad + i * bar
        parts.append(
            f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{max(bar - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="{COLORS[0]}"><title>{int(n)}</title></rect>'
        )

    def x_of(ms: float) -> float | None:
        uppers = [u for u, _ in buckets]
        for i, upper in enumerate(uppers):
            if ms <= upper:
                low = uppers[i - 1] if i else upper / 1.25
                frac = 0.0
                if math.isfinite(upper) and upper > low > 0 and ms > 0:
                    frac = (math.log(max(ms, low)) - math.log(low)) / (
                        math.log(upper) - math.log(low)
                    )
                return pad + (i + frac) * bar
        return None

    # p50's label to the left of its marker, p95's to the right: close values never overlap.
    for key, color, side in (("p50_ms", "#2e7d32", -1), ("p95_ms", "#c62828", 1)):
        value = latency.get(key)
        marker = x_of(float(value)) if value is not None else None
        if marker is not None:
            x = marker
            anchor = "end" if side < 0 else "start"
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad - 10}" y2="{height}" '
                f'stroke="{color}" stroke-dasharray="3 2"/>'
                f'<text x="{x + 2 * side:.1f}" y="{pad - 12}" text-anchor="{anchor}" '
                f'fill="{color}">{key[:3]}</text>'
            )
    first, last = buckets[0][0], buckets[-1][0]
    last_text = f"{last:.0f} ms" if math.isfinite(last) else "more"
    parts.append(
        f'<line x1="{pad}" x2="{width - pad}" y1="{height}" y2="{height}" stroke="#999"/>'
        f'<text x="{pad}" y="{height + 14}">≤{first:.1f} ms</text>'
        f'<text x="{width - pad}" y="{height + 14}" text-anchor="end">≤{last_text}</text>'
        f'<text x="{width / 2}" y="{height + 27}" text-anchor="middle">'
        f"latency (log scale), {int(latency.get('count', 0))} answers</text></svg>"
    )
    return (
        f"<figure>{''.join(parts)}<figcaption>{escape(locale)}: p50 "
        f"{fmt_ms(latency.get('p50_ms'))}, p95 {fmt_ms(latency.get('p95_ms'))}"
        "</figcaption></figure>"
    )


def fmt_ms(value: Any) -> str:
    return "-" if value is None else f"{value} ms"


def stacked_bars(
    title: str, labels: list[str], series: dict[str, list[int]], x_caption: str
) -> str:
    """Vertical stacked bars: one bar per label, one colour per series."""
    if not labels or not series:
        return ""
    width, height, pad = max(360, 28 * len(labels) + 60), 180, 30
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    peak = max(totals) or 1
    bar = (width - 2 * pad) / len(labels)
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height + 34}" '
        f'viewBox="0 0 {width} {height + 34}">'
    ]
    for i, label in enumerate(labels):
        y = float(height)
        for k, (name, values) in enumerate(series.items()):
            n = values[i]
            if not n:
                continue
            h = (height - pad) * n / peak
            y -= h
            parts.append(
                f'<rect x="{pad + i * bar + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{COLORS[k % len(COLORS)]}">'
                f"<title>{escape(label)} {escape(name)}: {n}</title></rect>"
            )
        if len(labels) <= 24 or i % max(1, len(labels) // 12) == 0:
            parts.append(
                f'<text x="{pad + (i + 0.5) * bar:.1f}" y="{height + 13}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(
        f'<line x1="{pad}" x2="{width - pad}" y1="{height}" y2="{height}" stroke="#999"/>'
        f'<text x="{pad - 4}" y="{pad}" text-anchor="end">{peak}</text>'
        f'<text x="{width / 2}" y="{height + 29}" text-anchor="middle">'
        f"{escape(x_caption)}</text></svg>"
    )
    return (
        f"<figure>{''.join(parts)}{legend(list(series))}"
        f"<figcaption>{escape(title)}</figcaption></figure>"
    )


def health_bars(locales: list[dict[str, Any]]) -> str:
    """One horizontal bar per locale: usable, banned by a site, ejected."""
    rows = [loc for loc in locales if loc["exits"]["total"]]
    if not rows:
        return ""
    width, row_h, left = 520, 22, 90
    height = row_h * len(rows) + 10
    colors = {"usable": "#59a14f", "banned": "#f28e2b", "ejected": "#e15759"}
    parts = [
        f'<svg role="img" aria-label="exits by health" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for r, loc in enumerate(rows):
        ex = loc["exits"]
        total = ex["total"]
        banned = min(ex["banned"], ex["usable"])
        parts_of = {"usable": ex["usable"] - banned, "banned": banned, "ejected": ex["ejected"]}
        y = 4 + r * row_h
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(loc["locale"])}</text>'
        )
        x = float(left)
        for state, n in parts_of.items():
            if not n:
                continue
            w = (width - left - 50) * n / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" '
                f'fill="{colors[state]}"><title>{state}: {n}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 13}">{ex["usable"]}/{total}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{s}</span>' for s, c in colors.items())
    return (
        f'<figure>{"".join(parts)}<div class="legend">{legend}</div>'
        "<figcaption>Exits by health at the end of the crawl</figcaption></figure>"
    )
