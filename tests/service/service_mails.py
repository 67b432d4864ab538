"""Patch mails as git send-email writes them, made up for the service tests."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

BASE_DATE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _diff(tag: str, index: int, version: int) -> str:
    # Each (tag, index, version) gets its own added line, so content hashes differ.
    func = f"memcg_{tag.replace('-', '_')}_{index}_v{version}"
    return (
        "diff --git a/mm/memcontrol.c b/mm/memcontrol.c\n"
        "index 1111111..2222222 100644\n"
        "--- a/mm/memcontrol.c\n"
        "+++ b/mm/memcontrol.c\n"
        "@@ -100,6 +100,11 @@ static void memcg_example(struct mem_cgroup *memcg)\n"
        " \tstruct obj_cgroup *objcg;\n"
        " \n"
        " \trcu_read_lock();\n"
        f"+\t/* {func} */\n"
        f"+\tif (!css_tryget(&memcg->css))\n"
        "+\t\tgoto out;\n"
        "+\tcss_put(&memcg->css);\n"
        "+out:\n"
        " \trcu_read_unlock();\n"
        " }\n"
        " \n"
    )


def _buggy_diff(tag: str, index: int, version: int) -> str:
    # A whole new function that returns early inside an RCU read-side section: the
    # rcu-lock-imbalance rule flags it, so the review has a finding to report.
    func = f"memcg_{tag.replace('-', '_')}_{index}_v{version}_busy"
    return (
        "diff --git a/mm/memcontrol.c b/mm/memcontrol.c\n"
        "index 1111111..2222222 100644\n"
        "--- a/mm/memcontrol.c\n"
        "+++ b/mm/memcontrol.c\n"
        "@@ -100,5 +100,16 @@ static void memcg_example(struct mem_cgroup *memcg)\n"
        " }\n"
        " \n"
        f"+static bool {func}(struct mem_cgroup *memcg)\n"
        "+{\n"
        "+\tbool busy;\n"
        "+\n"
        "+\trcu_read_lock();\n"
        "+\tif (!memcg)\n"
        "+\t\treturn false;\n"
        "+\tbusy = memcg->busy;\n"
        "+\trcu_read_unlock();\n"
        "+\treturn busy;\n"
        "+}\n"
        " \n"
        " static void memcg_other(void)\n"
        " {\n"
    )


def series_mails(
    tag: str,
    total: int = 3,
    *,
    version: int = 1,
    cover: bool = True,
    author: str = "Ada Dev <ada@example.org>",
    subject: str | None = None,
    domain: str = "example.org",
    buggy: bool = False,
) -> list[bytes]:
    """The cover letter (if any) and patches 1..total of one series, in sending order."""
    subject = subject or f"mm: memcg: fix {tag}"
    vtag = f"v{version} " if version > 1 else ""
    cover_id = f"{tag}-v{version}-0@{domain}"
    mails: list[bytes] = []
    if cover:
        mails.append(
            _mail(
                msgid=cover_id,
                subject=f"[PATCH {vtag}0/{total}] {subject}",
                author=author,
                minute=0,
                body=f"This series fixes {tag}.\n\nAda Dev (1):\n  mm: memcg\n\n-- \n2.39.5\n",
            )
        )
    root = cover_id if cover else f"{tag}-v{version}-1@{domain}"
    for i in range(1, total + 1):
        msgid = f"{tag}-v{version}-{i}@{domain}"
        refs = None if (not cover and i == 1) else root
        body = (
            f"Patch {i} of {tag}: keep the css reference balanced.\n\n"
            f"Signed-off-by: {author}\n---\n mm/memcontrol.c | 5 +++++\n\n"
            + (_buggy_diff if buggy else _diff)(tag, i, version)
            + "-- \n2.39.5\n"
        )
        mails.append(
            _mail(
                msgid=msgid,
                subject=f"[PATCH {vtag}{i}/{total}] {subject} part {i}",
                author=author,
                minute=i,
                body=body,
                in_reply_to=refs,
            )
        )
    return mails


def reply_mail(tag: str, to_msgid: str, root: str, n: int = 1) -> bytes:
    return _mail(
        msgid=f"{tag}-reply-{n}@example.net",
        subject="Re: [PATCH 1/3] something",
        author="Rev Iewer <rev@example.net>",
        minute=30 + n,
        body="> quoted\n\nReviewed-by: Rev Iewer <rev@example.net>\n",
        in_reply_to=to_msgid,
        references=[root, to_msgid] if root != to_msgid else [to_msgid],
    )


def _mail(
    *,
    msgid: str,
    subject: str,
    author: str,
    minute: int,
    body: str,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
) -> bytes:
    date = BASE_DATE.replace(minute=minute % 60)
    lines = [
        f"From: {author}",
        "To: linux-mm@kvack.org",
        "Cc: cgroups@vger.kernel.org",
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <{msgid}>",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
        refs = references or [in_reply_to]
        lines.append("References: " + " ".join(f"<{r}>" for r in refs))
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "", body]
    return "\n".join(lines).encode("utf-8")
