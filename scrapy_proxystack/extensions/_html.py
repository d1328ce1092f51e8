"""The end-of-crawl report as one self-contained HTML page: inline CSS and inline SVG charts.

No script, no font, no image and no style sheet is fetched: the page must open from an e-mail
attachment or an air-gapped archive exactly as it was written. Charts are drawn here, in a few
lines of SVG each, from the same data that goes to the JSON file. Every value from the crawl is
escaped; numbers carry ``data-key`` attributes so tests (and scrapers of the report) can read
them back without parsing prose.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Final

__all__ = ["render_html"]

_COLORS: Final = (
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
_HEALTH_COLORS: Final = {"healthy": "#2e7d32", "degraded": "#ef6c00", "unhealthy": "#c62828"}

_CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#222;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:14px;margin:12px 0 4px}
.meta{color:#555}.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;
font-weight:600;text-transform:uppercase;font-size:12px;letter-spacing:.04em}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #e2e4e8;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;margin:6px 0}
th,td{border:1px solid #e2e4e8;padding:4px 8px;text-align:left}th{background:#eef0f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;background:#fff;border:1px solid #e2e4e8;border-radius:6px;padding:8px}
figcaption{font-size:12px;color:#555}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.empty{color:#777;font-style:italic}
svg text{font:11px system-ui,sans-serif;fill:#444}
"""


def _num(value: Any, key: str | None = None) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.1f}"
    else:
        text = str(value)
    attr = f' data-key="{escape(key)}"' if key else ""
    return f'<td class="num"{attr}>{escape(text)}</td>'


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _legend(names: list[str]) -> str:
    items = "".join(
        f'<span><i style="background:{_COLORS[i % len(_COLORS)]}"></i>{escape(n)}</span>'
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def _latency_chart(locale: str, latency: dict[str, Any]) -> str:
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
            f'height="{h:.1f}" fill="{_COLORS[0]}"><title>{int(n)}</title></rect>'
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

    for key, color in (("p50_ms", "#2e7d32"), ("p95_ms", "#c62828")):
        value = latency.get(key)
        marker = x_of(float(value)) if value is not None else None
        if marker is not None:
            x = marker
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad - 10}" y2="{height}" '
                f'stroke="{color}" stroke-dasharray="3 2"/>'
                f'<text x="{x + 2:.1f}" y="{pad - 12}" fill="{color}">{key[:3]}</text>'
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
        f"{_fmt_ms(latency.get('p50_ms'))}, p95 {_fmt_ms(latency.get('p95_ms'))}"
        "</figcaption></figure>"
    )


def _fmt_ms(value: Any) -> str:
    return "-" if value is None else f"{value} ms"


def _stacked_bars(
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
                f'height="{h:.1f}" fill="{_COLORS[k % len(_COLORS)]}">'
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
        f"<figure>{''.join(parts)}{_legend(list(series))}"
        f"<figcaption>{escape(title)}</figcaption></figure>"
    )


def _health_bars(locales: list[dict[str, Any]]) -> str:
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


def _exit_rows(exits: list[dict[str, Any]]) -> list[str]:
    return [
        f'<tr data-exit="{escape(e["exit"])}"><td>{escape(e["exit"])}</td>'
        f"<td>{escape(str(e['locale']))}</td>"
        + _num(e["attempts"], "attempts")
        + _num(e["successes"], "successes")
        + _num(e["bans"], "bans")
        + _num(e["failures"], "failures")
        + _num(e["mean_latency_ms"], "mean_latency_ms")
        + _num(e["max_latency_ms"], "max_latency_ms")
        + "</tr>"
        for e in exits
    ]


def render_html(data: dict[str, Any]) -> str:
    """The report page for ``data`` (the structure written to the JSON file)."""
    totals = data["totals"]
    health = data["health"]
    color = _HEALTH_COLORS.get(health["status"], "#555")
    cards = "".join(
        f'<div class="card"><b data-key="{key}">{escape(str(value))}</b><span>{label}</span></div>'
        for key, value, label in (
            ("attempts", totals["attempts"], "attempts through an exit"),
            ("successes", totals["successes"], "usable answers"),
            ("bans", totals["bans"], "bans"),
            ("transport_failures", totals["transport_failures"], "transport failures"),
            ("no_exit", totals["no_exit"], "failed closed (no exit)"),
            ("ban_rate", _pct(totals["ban_rate"]), "ban rate"),
        )
    )
    reasons = "".join(f"<li>{escape(r)}</li>" for r in health["reasons"])
    head = (
        f"<h1>Crawl report: {escape(data['spider'])}</h1>"
        f'<p class="meta">{escape(data["start"])} → {escape(data["finish"])} '
        f"({data['duration_s']:.1f} s), closed: {escape(str(data['close_reason']))} "
        f'<span class="badge" data-key="health" style="background:{color}">'
        f"{escape(health['status'])}</span></p>"
        f"{f'<ul>{reasons}</ul>' if reasons else ''}<div class='cards'>{cards}</div>"
    )

    locales: list[dict[str, Any]] = data["locales"]
    locale_rows = [
        f'<tr data-locale="{escape(loc["locale"])}"><td>{escape(loc["locale"])}</td>'
        + _num(loc["attempts"], "attempts")
        + _num(loc["successes"], "successes")
        + _num(loc["bans"], "bans")
        + f'<td class="num" data-key="ban_rate">{_pct(loc["ban_rate"])}</td>'
        + _num(loc["transport_failures"], "transport_failures")
        + _num(loc["no_exit"], "no_exit")
        + _num(loc["latency"]["p50_ms"], "p50_ms")
        + _num(loc["latency"]["p95_ms"], "p95_ms")
        + _num(loc["latency"]["p99_ms"], "p99_ms")
        + _num(loc["exits"]["usable"], "exits_usable")
        + _num(loc["exits"]["ejected"], "exits_ejected")
        + _num(loc["exits"]["banned"], "exits_banned")
        + _num(loc["exits"]["total"], "exits_total")
        + f"<td>{'ran dry' if loc['ran_dry'] else ''}</td></tr>"
        for loc in locales
    ]
    locale_table = _table(
        [
            "locale",
            "attempts",
            "usable answers",
            "bans",
            "ban rate",
            "transport failures",
            "no exit",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "usable exits",
            "ejected",
            "banned",
            "exits",
            "",
        ],
        locale_rows,
        "No request went through an exit.",
    )
    outcome_chart = _stacked_bars(
        "Attempts per locale by outcome",
        [loc["locale"] for loc in locales],
        {
            "success": [loc["successes"] for loc in locales],
            "ban": [loc["bans"] for loc in locales],
            "transport failure": [loc["transport_failures"] for loc in locales],
            "no exit": [loc["no_exit"] for loc in locales],
        },
        "locale",
    )
    latency_charts = "".join(_latency_chart(loc["locale"], loc["latency"]) for loc in locales)

    bans = data["bans"]
    series: dict[str, list[int]] = bans["series"]
    n_buckets = max((len(s) for s in series.values()), default=0)
    width = bans["bucket_seconds"]
    time_labels = [f"{i * width:g}s" for i in range(n_buckets)]
    ban_chart = _stacked_bars(
        "Bans over time by reason", time_labels, series, f"seconds since start ({width:g} s bars)"
    )
    reason_names = list(bans["by_reason"])
    site_rows = [
        f'<tr data-site="{escape(s["site"])}"><td>{escape(s["site"])}</td>'
        + _num(s["total"], "total")
        + "".join(_num(s["reasons"].get(r, 0), f"reason:{r}") for r in reason_names)
        + "</tr>"
        for s in bans["by_site"]
    ]
    ban_table = _table(["site", "bans", *reason_names], site_rows, "No bans.")
    reason_rows = [
        f'<tr data-reason="{escape(r)}"><td>{escape(r)}</td>{_num(n, "count")}</tr>'
        for r, n in bans["by_reason"].items()
    ]
    reason_table = _table(["reason", "bans"], reason_rows, "No bans.")

    traffic_rows = [
        f'<tr data-site="{escape(s["site"])}"><td>{escape(s["site"])}</td>'
        + _num(s["requests"], "requests")
        + _num(s["successes"], "successes")
        + _num(s["bans"], "bans")
        + _num(s["failures"], "failures")
        + _num(s["no_exit"], "no_exit")
        + "</tr>"
        for s in data["sites"]
    ]
    traffic_table = _table(
        ["site", "attempts", "usable answers", "bans", "transport failures", "no exit"],
        traffic_rows,
        "No traffic.",
    )
    exit_headers = [
        "exit",
        "locale",
        "attempts",
        "usable answers",
        "bans",
        "failures",
        "mean ms",
        "max ms",
    ]
    slowest = _table(exit_headers, _exit_rows(data["exits"]["slowest"]), "No latency samples.")
    most_banned = _table(exit_headers, _exit_rows(data["exits"]["most_banned"]), "No bans.")
    pii = data["pii"]
    pii_rows = [
        f'<tr data-pii="{escape(t)}"><td>{escape(t)}</td>{_num(n, "masked")}</tr>'
        for t, n in pii["masked"].items()
    ]
    # Tell "nothing found" apart from "not looked for": masking is off unless enabled.
    empty = (
        "No personal data masked."
        if pii.get("items_scanned")
        else "PII masking was off (PROXYSTACK_PII_ENABLED) or saw no item."
    )
    pii_table = _table(["type", "values masked"], pii_rows, empty)

    body = (
        f"{head}<h2>Locales</h2>{locale_table}<div class='charts'>{outcome_chart}"
        f"{_health_bars(locales)}</div>"
        f"<h2>Latency distribution per locale</h2><div class='charts'>"
        f"{latency_charts or '<p class=empty>No latency samples.</p>'}</div>"
        f"<h2>Bans</h2><div class='charts'>{ban_chart}</div>"
        f"<h3>Bans by reason</h3>{reason_table}<h3>Bans per site and reason</h3>{ban_table}"
        f"<h2>Traffic per site</h2>{traffic_table}"
        f"<h2>Slowest exits</h2>{slowest}<h2>Most-banned exits</h2>{most_banned}"
        f"<h2>Personal data masked</h2><p class='meta'>items scanned: "
        f"<b data-key='items_scanned'>{pii['items_scanned']}</b>, with personal data: "
        f"<b data-key='items_with_pii'>{pii['items_with_pii']}</b></p>{pii_table}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Crawl report: {escape(data['spider'])}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
