"""The HTML page: what it shows, and that nothing from mail reaches it unescaped."""

from __future__ import annotations

from reviewbot.report.html import findings_of, render_index

SERIES = {
    "id": 7, "series_id": "c@x", "version": 2, "subject": "mm: <script>alert(1)</script>",
    "author": "Eve <eve@example.org>", "present": 2, "expected": 3, "missing": [3],
    "state": "waiting", "reason": "missing patch(es) [3]", "run_id": None, "updated_at": 90.0,
}
RUN = {
    "id": 3, "series_row": 7, "series_id": "c@x", "state": "finished", "partial": True,
    "worker": "w1", "finished_at": 95.0, "error": "",
    "result": {"series": [{"patches": [{"findings": [
        {"rule": "rcu-lock-imbalance", "severity": "error", "file": "mm/memcontrol.c",
         "line": 108, "message": "left <b>open</b>"},
    ]}]}]},
}


def test_page_lists_series_and_runs_with_findings_and_escapes_mail_text() -> None:
    page = render_index([SERIES], [RUN], now=100.0)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "left &lt;b&gt;open&lt;/b&gt;" in page
    assert "2/3 (missing 3)" in page and "10 s ago" in page
    assert "rcu-lock-imbalance" in page and "mm/memcontrol.c:108" in page
    assert '<a href="/v1/series/7">[v2] mm: &lt;script&gt;' in page  # run linked to series
    assert "(partial)" in page


def test_empty_page_says_so() -> None:
    page = render_index([], [], now=0.0)
    assert "No series received yet." in page and "No runs yet." in page


def test_findings_are_found_wherever_the_report_nests_them() -> None:
    assert [f["rule"] for f in findings_of(RUN["result"])] == ["rcu-lock-imbalance"]
    assert list(findings_of({"findings": [{"no": "rule"}]})) == []


def test_missing_patches_read_as_ranges_not_as_every_number() -> None:
    """A 68-patch series of which the list carried one (issue 15's "1/68 (missing 1, 2, 3,
    ..., 68)"): the page says which, in ranges."""
    from reviewbot.model import number_ranges

    missing = [*range(2, 40), *range(41, 69)]
    assert number_ranges(missing) == "2-39, 41-68"
    assert number_ranges([5, 1, 2, 3, 7, 8, 3]) == "1-3, 5, 7-8"
    assert number_ranges([]) == "" and number_ranges([4]) == "4"
    row = dict(SERIES, present=1, expected=68, missing=missing,
               reason=f"missing patch(es) {number_ranges(missing)}")
    page = render_index([row], [], now=100.0)
    assert "1/68 (missing 2-39, 41-68)" in page
    assert "2, 3, 4" not in page
