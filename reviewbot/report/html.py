"""The service's HTML page: recent series and runs with their status and findings.

One self-contained page (inline CSS, no JavaScript, no external assets: the service often
runs where the browser cannot reach a CDN). Every value from mail is escaped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from reviewbot.model import number_ranges

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.st{font-weight:600;padding:.1em .45em;border-radius:.3em;white-space:nowrap}
.queued,.waiting{background:#eef;color:#336}.running{background:#ffd;color:#650}
.finished,.reviewed{background:#dfd;color:#141}.failed{background:#fdd;color:#811}
.superseded{background:#eee;color:#666}
.sev-error{color:#a00;font-weight:600}.sev-warning{color:#a60}.sev-info{color:#555}
code,pre{font-family:ui-monospace,monospace;font-size:.9em}
ul.f{margin:.2em 0;padding-left:1.2em}
"""


def _ago(ts: float | None, now: float) -> str:
    if not ts:
        return "-"
    secs = max(0, int(now - ts))
    if secs < 120:
        return f"{secs} s ago"
    if secs < 7200:
        return f"{secs // 60} min ago"
    if secs < 172800:
        return f"{secs // 3600} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _state(state: str) -> str:
    return f'<span class="st {escape(state)}">{escape(state)}</span>'


def findings_of(result: Any) -> Iterator[Mapping[str, Any]]:
    """Every finding in a review JSON document, wherever the schema nests them."""
    if isinstance(result, Mapping):
        for key, value in result.items():
            if key == "findings" and isinstance(value, list):
                for item in value:
                    if isinstance(item, Mapping) and "rule" in item:
                        yield item
            else:
                yield from findings_of(value)
    elif isinstance(result, list):
        for item in result:
            yield from findings_of(item)


def _finding(f: Mapping[str, Any]) -> str:
    sev = str(f.get("severity", "info"))
    where = escape(str(f.get("file", "")))
    if f.get("line"):
        where += f":{int(f['line'])}"
    return (
        f'<li><span class="sev-{escape(sev)}">{escape(sev)}</span> '
        f"<code>{escape(str(f.get('rule', '')))}</code> <code>{where}</code> "
        f"{escape(str(f.get('message', '')))}</li>"
    )


def _counts(row: Mapping[str, Any]) -> str:
    """A series' findings by severity ("2 errors, 1 warning"), linked to its run."""
    counts = row.get("findings")
    if not isinstance(counts, Mapping):
        return "-"
    parts = [f'<span class="sev-{sev}">{n} {sev}{"s" if n != 1 else ""}</span>'
             for sev, n in counts.items() if n]
    text = ", ".join(parts) or "none"
    return f'<a href="/v1/runs/{int(row["run_id"])}">{text}</a>' if row.get("run_id") else text


def _filters(state: str | None, with_findings: bool, page: Mapping[str, Any] | None) -> str:
    """Filter links (state, has findings) and the newer/older page links."""
    def link(label: str, st: str | None, wf: bool, offset: int | None = None) -> str:
        query = urlencode([(k, v) for k, v in (("state", st), ("findings", "1" if wf else None),
                                                ("offset", str(offset) if offset else None))
                           if v])
        current = offset is None and st == state and wf == with_findings
        text = f"<b>{escape(label)}</b>" if current else escape(label)
        return f'<a href="/{"?" + query if query else ""}">{text}</a>'

    states = [link("all", None, False), link("with findings", None, True)]
    states += [link(st, st, False) for st in ("waiting", "queued", "reviewed", "failed")]
    out = "<p>Show: " + " · ".join(states)
    if page is not None:
        offset, limit = int(page.get("offset") or 0), int(page.get("limit") or 50)
        if offset > 0:
            out += " | " + link("← newer", state, with_findings, max(0, offset - limit))
        if page.get("next_offset") is not None:
            out += " | " + link("older →", state, with_findings, int(page["next_offset"]))
    return out + "</p>"


def render_index(
    series: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    *,
    now: float | None = None,
    title: str = "reviewbot",
    max_findings: int = 20,
    quarantined: Sequence[Mapping[str, Any]] = (),
    page: Mapping[str, Any] | None = None,
    state: str | None = None,
    with_findings: bool = False,
) -> str:
    """The page served at ``GET /``.

    Args:
        series: rows as :meth:`reviewbot.service.store.Store.series_rows` returns them.
        runs: rows as ``Store.run_rows(result=True)`` returns them.
        quarantined: mails set aside after failed intakes (``Store.quarantined_mails``).
        page: the series page (``reviewbot.service.listing.list_series``): offset, limit
            and next_offset for the paging links; its rows carry findings per severity.
        state, with_findings: the filters the page was asked for (kept in its links).
    """
    now = time.time() if now is None else now
    subjects = {int(s["id"]): f"[v{int(s['version'])}] {s['subject']}" for s in series}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}: recent series and runs</h1>",
        '<p>JSON: <a href="/v1/runs">/v1/runs</a> · <a href="/openapi.json">OpenAPI</a>'
        ' · <a href="/metrics">metrics</a></p>',
        f'<h2 id="series">Series ({len(series)})</h2>',
        _filters(state, with_findings, page),
    ]
    if not series:
        out.append("<p>No series received yet.</p>")
    else:
        out.append(
            "<table><thead><tr><th>Series</th><th>Author</th><th>Patches</th>"
            "<th>State</th><th>Run</th><th>Findings</th><th>Updated</th></tr></thead><tbody>"
        )
        for s in series:
            missing = s.get("missing") or []
            patches = f"{s['present']}/{s['expected']}"
            if s.get("missing_note"):
                patches += f" ({s['missing_note']})"
            elif missing:
                patches += f" (missing {number_ranges(int(i) for i in missing)})"
            run = (
                f'<a href="/v1/runs/{int(s["run_id"])}">#{int(s["run_id"])}</a>'
                if s.get("run_id")
                else "-"
            )
            reason = f"<br><small>{escape(str(s['reason']))}</small>" if s.get("reason") else ""
            backport = (f"<br><small>backport: {escape(str(s['backport']))}</small>"
                        if s.get("backport") else "")
            out.append(
                f'<tr><td><a href="/v1/series/{int(s["id"])}">'
                f"[v{int(s['version'])}] {escape(str(s['subject']))}</a><br>"
                f"<small><code>{escape(str(s['series_id']))}</code></small>{backport}</td>"
                f"<td>{escape(str(s['author']))}</td><td>{escape(patches)}</td>"
                f"<td>{_state(str(s['state']))}{reason}</td><td>{run}</td>"
                f"<td>{_counts(s)}</td><td>{_ago(s.get('updated_at'), now)}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append(f'<h2 id="runs">Runs ({len(runs)})</h2>')
    if not runs:
        out.append("<p>No runs yet.</p>")
    else:
        out.append(
            "<table><thead><tr><th>Run</th><th>Series</th><th>State</th><th>Findings</th>"
            "<th>Worker</th><th>Finished</th></tr></thead><tbody>"
        )
        for r in runs:
            found = list(findings_of(r.get("result")))
            if found:
                items = "".join(_finding(f) for f in found[:max_findings])
                more = len(found) - max_findings
                extra = f"<li>… {more} more</li>" if more > 0 else ""
                cell = f'<ul class="f">{items}{extra}</ul>'
            elif r.get("state") == "finished":
                cell = "none"
            else:
                cell = escape(str(r.get("error") or "-"))[:300]
            partial = " (partial)" if r.get("partial") else ""
            known = subjects.get(int(r.get("series_row") or 0))
            label = (
                f'<a href="/v1/series/{int(r["series_row"])}">{escape(known)}</a><br>'
                if known
                else ""
            )
            out.append(
                f'<tr><td><a href="/v1/runs/{int(r["id"])}">#{int(r["id"])}</a></td>'
                f"<td>{label}<small><code>{escape(str(r['series_id']))}</code></small>"
                f"{partial}</td>"
                f"<td>{_state(str(r['state']))}</td><td>{cell}</td>"
                f"<td>{escape(str(r.get('worker') or '-'))}</td>"
                f"<td>{_ago(r.get('finished_at'), now)}</td></tr>"
            )
        out.append("</tbody></table>")
    if quarantined:
        out.append(f'<h2 id="quarantine">Quarantined mails ({len(quarantined)})</h2>')
        out.append("<p>Their intake failed every time; they are set aside with the error "
                   '(JSON: <a href="/v1/quarantine">/v1/quarantine</a>).</p>')
        out.append("<table><thead><tr><th>Mail</th><th>Failures</th><th>Error</th>"
                   "<th>Received</th></tr></thead><tbody>")
        for q in quarantined:
            out.append(
                f"<tr><td>{escape(str(q['subject']))[:200]}<br><small><code>"
                f"{escape(str(q['message_id']))[:200]}</code></small></td>"
                f"<td>{int(q['failures'])}</td><td>{escape(str(q['error']))[:300]}</td>"
                f"<td>{_ago(q.get('received_at'), now)}</td></tr>")
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)
