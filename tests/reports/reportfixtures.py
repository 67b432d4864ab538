"""Fixture mail of the report tests and a reviewed series with findings on known lines."""

from __future__ import annotations

from reviewbot.config import Settings
from reviewbot.mail.parse import parse_message
from reviewbot.mail.series import assemble
from reviewbot.model import Finding, Series
from reviewbot.pipeline import ReviewState, SeriesReview, StageOutcome

COVER = b"""From: Ann Author <ann@example.org>
To: cgroups@vger.kernel.org
Subject: [PATCH v2 0/2] mm: memcg: tidy the charge path
Date: Mon, 1 Jun 2020 10:00:00 +0000
Message-ID: <cover.v2@example.org>

Two small changes to the charge path.
"""

PATCH1 = b"""From: Ann Author <ann@example.org>
To: cgroups@vger.kernel.org
Cc: Johannes Weiner <hannes@cmpxchg.org>,
 =?UTF-8?Q?Michal_Koutn=C3=BD?= <mkoutny@suse.com>, Ann Author <ann@example.org>,
 reviewbot <bot@ci.example.org>, linux-mm@kvack.org
Cc: hannes@cmpxchg.org
Subject: [PATCH v2 1/2] mm: memcg: pin the css while charging
Date: Mon, 1 Jun 2020 10:01:00 +0000
Message-ID: <p1.v2@example.org>
In-Reply-To: <cover.v2@example.org>
References: <cover.v2@example.org>

Take a css reference while the charge is in flight.

Signed-off-by: Ann Author <ann@example.org>
---
 mm/memcontrol.c | 5 +++++
 1 file changed, 5 insertions(+)

diff --git a/mm/memcontrol.c b/mm/memcontrol.c
index 1111111..2222222 100644
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -2700,8 +2700,13 @@ static int try_charge(struct mem_cgroup *memcg, gfp_t gfp_mask,
 \tunsigned int batch = max(MEMCG_CHARGE_BATCH, nr_pages);
 \tint nr_retries = MAX_RECLAIM_RETRIES;
 \tstruct mem_cgroup *mem_over_limit;
+\tint ret;
\x20
+\tcss_get(&memcg->css);
 \tif (consume_stock(memcg, nr_pages))
-\t\treturn 0;
+\t\treturn 0; /* this return leaks the css reference taken just above it */
+
+\tret = do_charge(memcg, nr_pages);
+\tcss_put(&memcg->css);
 \treturn ret;
 }
--\x20
2.39.5
"""

PATCH2 = b"""From: Ann Author <ann@example.org>
To: cgroups@vger.kernel.org
Subject: [PATCH v2 2/2] mm: memcg: comment
Date: Mon, 1 Jun 2020 10:02:00 +0000
Message-ID: <p2.v2@example.org>
In-Reply-To: <cover.v2@example.org>
References: <cover.v2@example.org>

Comment only.

Signed-off-by: Ann Author <ann@example.org>
---
diff --git a/mm/memcontrol.c b/mm/memcontrol.c
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -10,3 +10,4 @@
 a
+/* b */
 c
 d
"""


def fixture_series() -> Series:
    msgs = [parse_message(m) for m in (COVER, PATCH1, PATCH2)]
    (found,) = assemble(msgs, Settings().mail).series
    return found


def make_finding(line: int | None, evidence: str, *, rule: str = "css-get-leak",
                 severity: str = "error", patch_index: int | None = 1,
                 message: str = "css_get() here has no css_put() on the early return "
                 "of consume_stock(), so every stock hit leaks a reference to the memcg "
                 "and the cgroup can never be freed after rmdir.") -> Finding:
    return Finding(rule=rule, severity=severity, confidence="high", file="mm/memcontrol.c",
                   line=line, function="try_charge", message=message,
                   fingerprint=f"fp-{rule}-{evidence.strip()}", evidence=(evidence,),
                   patch_index=patch_index)


def make_review(series: Series, findings: list[Finding],
                extra: list[StageOutcome] | None = None) -> SeriesReview:
    outcomes = [StageOutcome("apply", "skipped", "--no-tree"),
                StageOutcome("rules", "warning" if findings else "success", findings=findings),
                *(extra or [StageOutcome("boot", "skipped", "not requested (use --boot)")])]
    return SeriesReview(series, ReviewState(), outcomes)
