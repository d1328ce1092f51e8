"""The end-of-crawl report as one self-contained HTML page: inline CSS and inline SVG charts.

No script, no font, no image and no style sheet is fetched: the page must open from an e-mail
attachment or an air-gapped archive exactly as it was written. Charts are drawn here, in a few
lines of SVG each, from the same data that goes to the JSON file. Every value from the crawl is
escaped; numbers carry ``data-key`` attributes so tests (and scrapers of the report) can read
them back without parsing prose.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from typing import Any, Final

from scrapy_proxystack.extensions._charts import (
    fmt_ms,
    health_bars,
    latency_chart,
    stacked_bars,
)

__all__ = ["render_html"]

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
    body = (
        _head(data)
        + _locales_section(data["locales"])
        + _pools_section(data.get("pools", []), data.get("pool_sites", []))
        + _canary_section(data.get("canary", []))
        + _bans_section(data["bans"])
        + _traffic_section(data["sites"])
        + _exits_section(data["exits"])
        + _pii_section(data["pii"])
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Crawl report: {escape(data['spider'])}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _head(data: dict[str, Any]) -> str:
    """Title, times, health badge and reasons, and the headline cards."""
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
    return (
        f"<h1>Crawl report: {escape(data['spider'])}</h1>"
        f'<p class="meta">{escape(data["start"])} → {escape(data["finish"])} '
        f"({data['duration_s']:.1f} s), closed: {escape(str(data['close_reason']))} "
        f'<span class="badge" data-key="health" style="background:{color}">'
        f"{escape(health['status'])}</span></p>"
        f"{f'<ul>{reasons}</ul>' if reasons else ''}<div class='cards'>{cards}</div>"
    )


_LOCALE_HEADERS: Final = [
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
    "state",
]


def _locales_section(locales: list[dict[str, Any]]) -> str:
    """The per-locale table, the outcome and health charts, and the latency histograms."""
    rows = [
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
    table = _table(_LOCALE_HEADERS, rows, "No request went through an exit.")
    outcome_chart = stacked_bars(
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
    latency_charts = "".join(latency_chart(loc["locale"], loc["latency"]) for loc in locales)
    return (
        f"<h2>Locales</h2>{table}<div class='charts'>{outcome_chart}"
        f"{health_bars(locales)}</div>"
        f"<h2>Latency distribution per locale</h2><div class='charts'>"
        f"{latency_charts or '<p class=empty>No latency samples.</p>'}</div>"
    )


def _bans_section(bans: dict[str, Any]) -> str:
    """Bans over time by reason, by reason, and per site and reason."""
    series: dict[str, list[int]] = bans["series"]
    n_buckets = max((len(s) for s in series.values()), default=0)
    width = bans["bucket_seconds"]
    time_labels = [f"{i * width:g}s" for i in range(n_buckets)]
    ban_chart = stacked_bars(
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
    return (
        f"<h2>Bans</h2><div class='charts'>{ban_chart}</div>"
        f"<h3>Bans by reason</h3>{reason_table}<h3>Bans per site and reason</h3>{ban_table}"
    )


def _traffic_section(sites: list[dict[str, Any]]) -> str:
    rows = [
        f'<tr data-site="{escape(s["site"])}"><td>{escape(s["site"])}</td>'
        + _num(s["requests"], "requests")
        + _num(s["successes"], "successes")
        + _num(s["bans"], "bans")
        + _num(s["failures"], "failures")
        + _num(s["no_exit"], "no_exit")
        + "</tr>"
        for s in sites
    ]
    table = _table(
        ["site", "attempts", "usable answers", "bans", "transport failures", "no exit"],
        rows,
        "No traffic.",
    )
    return f"<h2>Traffic per site</h2>{table}"


_EXIT_HEADERS: Final = [
    "exit",
    "locale",
    "attempts",
    "usable answers",
    "bans",
    "failures",
    "mean ms",
    "max ms",
]


def _exits_section(exits: dict[str, Any]) -> str:
    slowest = _table(_EXIT_HEADERS, _exit_rows(exits["slowest"]), "No latency samples.")
    most_banned = _table(_EXIT_HEADERS, _exit_rows(exits["most_banned"]), "No bans.")
    return f"<h2>Slowest exits</h2>{slowest}<h2>Most-banned exits</h2>{most_banned}"


def _pii_section(pii: dict[str, Any]) -> str:
    rows = [
        f'<tr data-pii="{escape(t)}"><td>{escape(t)}</td>{_num(n, "masked")}</tr>'
        for t, n in pii["masked"].items()
    ]
    # Tell "nothing found" apart from "not looked for": masking is off unless enabled.
    empty = (
        "No personal data masked."
        if pii.get("items_scanned")
        else "PII masking was off (PROXYSTACK_PII_ENABLED) or saw no item."
    )
    table = _table(["type", "values masked"], rows, empty)
    return (
        f"<h2>Personal data masked</h2><p class='meta'>items scanned: "
        f"<b data-key='items_scanned'>{pii['items_scanned']}</b>, with personal data: "
        f"<b data-key='items_with_pii'>{pii['items_with_pii']}</b></p>{table}"
    )


_POOL_HEADERS: Final = [
    "locale",
    "pool",
    "weight (configured → now)",
    "attempts",
    "usable answers",
    "ban rate [95% CI]",
    "transport failures [95% CI]",
    "p50 ms [95% CI]",
    "p95 ms [95% CI]",
    "bytes",
]


def _ci(figure: dict[str, Any]) -> str:
    interval = figure.get("ci95")
    if figure.get("rate") is None or not interval:
        return "-"
    return f"{_pct(figure['rate'])} [{_pct(interval[0])}, {_pct(interval[1])}]"


def _ci_ms(figure: dict[str, Any]) -> str:
    interval = figure.get("ci95_ms")
    text = fmt_ms(figure.get("ms"))
    return f"{text} [{interval[0]}, {interval[1]}]" if interval and figure.get("ms") else text


def _pools_section(pools: list[dict[str, Any]], differences: list[dict[str, Any]]) -> str:
    """The pools of each locale side by side, and the sites where they differ most."""
    shown = [p for p in pools if p["attempts"] or p["weight"] != p["weight_now"]]
    several = {p["locale"] for p in pools if sum(q["locale"] == p["locale"] for q in pools) > 1}
    rows = [
        f'<tr data-pool="{escape(p["locale"])}:{escape(p["pool"])}">'
        f"<td>{escape(p['locale'])}</td><td>{escape(p['pool'])}</td>"
        f'<td class="num" data-key="weight_now">{p["weight"]:g} → {p["weight_now"]:g}</td>'
        + _num(p["attempts"], "attempts")
        + _num(p["successes"], "successes")
        + f'<td class="num" data-key="ban_rate">{escape(_ci(p["ban_rate"]))}</td>'
        + f'<td class="num" data-key="failure_rate">{escape(_ci(p["failure_rate"]))}</td>'
        + f'<td class="num" data-key="p50_ms">{escape(_ci_ms(p["p50"]))}</td>'
        + f'<td class="num" data-key="p95_ms">{escape(_ci_ms(p["p95"]))}</td>'
        + _num(p["bytes"], "bytes")
        + "</tr>"
        for p in shown
        if p["locale"] in several
    ]
    if not rows:
        return ""
    parts = [
        "<h2>Pools side by side</h2>",
        _table(_POOL_HEADERS, rows, "No pool traffic."),
    ]
    for diff in differences:
        if not diff["sites"]:
            continue
        names = diff["pools"]
        site_rows = [
            f'<tr data-site="{escape(s["site"])}"><td>{escape(s["site"])}</td>'
            + "".join(f'<td class="num">{escape(_site_cell(s["pools"][n]))}</td>' for n in names)
            + _num(s["z"], "z")
            + "</tr>"
            for s in diff["sites"]
        ]
        parts.append(
            f"<h3>{escape(diff['locale'])}: sites where the pools' ban rates differ most</h3>"
            + _table(["site", *(f"{n}: bans / attempts" for n in names), "gap (z)"], site_rows, "")
        )
    return "".join(parts)


def _site_cell(row: dict[str, int]) -> str:
    reached = row["attempts"] - row["failures"]
    rate = _pct(row["bans"] / reached) if reached else "-"
    return f"{row['bans']} / {reached} ({rate})"


def _canary_section(canaries: list[dict[str, Any]]) -> str:
    """Each canary: its state and share, the matched-pair figures, and what was decided."""
    if not canaries:
        return ""
    parts = ["<h2>Canary analysis</h2>"]
    for c in canaries:
        label = f"{c['locale']}:{c['candidate']}"
        state = c["state"].replace("_", " ")
        criteria_rows = [
            f'<tr data-criterion="{escape(name)}"><td>{escape(name)}</td>'
            + _num(f["pairs"], "pairs")
            + _num(f["candidate"], "candidate_worse")
            + _num(f["baseline"], "baseline_worse")
            + _num(f["evidence"], "evidence")
            + _num(f["threshold"], "threshold")
            + "</tr>"
            for name, f in c["criteria"].items()
        ]
        decisions = "".join(
            f'<li data-action="{escape(d["action"])}">{escape(_iso(d["time"]))}: '
            f"{escape(d['message'])}</li>"
            for d in c["decisions"]
        )
        parts.append(
            f'<h3 data-canary="{escape(label)}">{escape(label)} against '
            f"{escape(c['baseline'])}: <span data-key='state'>{escape(state)}</span>, "
            f"now {c['share_pct']:g}% of the two pools' traffic</h3>"
            f"<p class='meta'>{escape(_params(c))}"
            + f"; attempts: candidate {c['attempts']['candidate']}, baseline "
            f"{c['attempts']['baseline']}</p>"
            + _table(
                [
                    "criterion",
                    "matched pairs",
                    "only the candidate worse",
                    "only the baseline worse",
                    "evidence",
                    "rollback at",
                ],
                criteria_rows,
                "",
            )
            + (f"<ul>{decisions}</ul>" if decisions else "<p class='empty'>No decision yet.</p>")
        )
    return "".join(parts)


def _params(c: dict[str, Any]) -> str:
    text = f"alpha {c['alpha']:g}, margin {c['margin']:g}"
    if c["latency_margin"] is not None:
        text += f", latency margin {c['latency_margin']:g}"
    if c["steps"]:
        text += f", steps {', '.join(f'{s:g}%' for s in c['steps'])}"
    return text


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
