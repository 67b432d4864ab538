"""Rule documentation rendered from the YAML: `rules explain ID` and docs/rules.md.

docs/rules.md has a hand-written guide followed by a generated part between two markers;
:func:`update_rules_md` rewrites only the generated part, and a test checks it is current.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from reviewbot.engine.fixtures import discover
from reviewbot.engine.loader import Rule

BEGIN = "<!-- BEGIN GENERATED RULE LIST (reviewbot rules docs) -->"
END = "<!-- END GENERATED RULE LIST -->"


def _para(text: str) -> str:
    return " ".join(text.split())


def explain(rule: Rule) -> str:
    """The one-template documentation of a rule, as text for a terminal."""
    refs = "\n".join(
        f"  - [{r['kind']}] {r['what']}\n    {r['where']}"
        + (f"\n    > {r['quote']}" if r.get("quote") else "")
        for r in rule.references
    )
    fixtures = sorted(p.name for p in rule.fixtures_dir.glob("*.patch")) if rule.fixtures_dir.is_dir() else []
    return (
        f"{rule.id}: {rule.title}\n"
        f"severity {rule.severity}, confidence {rule.confidence}, category {rule.category}, "
        f"engine {rule.engine}, scope {rule.scope}"
        + (f", issue rule {rule.issue_rule}" if rule.issue_rule else "")
        + "\n\nWhat it does and why it matters\n"
        + textwrap.indent(rule.docs.strip(), "  ")
        + "\n\nMessage\n"
        + textwrap.indent(textwrap.fill(_para(rule.message), 76), "  ")
        + "\n\nWhat to write instead\n"
        + textwrap.indent(textwrap.fill(_para(rule.fix_hint), 76), "  ")
        + "\n\nKnown false positives\n"
        + textwrap.indent(textwrap.fill(_para(rule.false_positives), 76), "  ")
        + "\n\nReferences\n"
        + refs
        + "\n\nFixtures\n"
        + ("\n".join(f"  rules/tests/{rule.id}/{n}" for n in fixtures) or "  (none)")
        + "\n"
    )


def rule_list_markdown(rules: list[Rule], rules_dir: Path) -> str:
    fixtures, _ = discover(rules_dir)
    lines = [
        BEGIN,
        "",
        "| id | issue | severity | confidence | engine | title |",
        "|----|-------|----------|------------|--------|-------|",
    ]
    for r in rules:
        lines.append(
            f"| [`{r.id}`](#{r.id}) | {r.issue_rule or ''} | {r.severity} | {r.confidence} | "
            f"{r.engine} | {r.title} |"
        )
    for r in rules:
        kinds = [f.name for f in fixtures if f.rule == r.id]
        lines += [
            "",
            f"### {r.id}",
            "",
            f"**{r.title}** - severity `{r.severity}`, confidence `{r.confidence}`, "
            f"category `{r.category}`, engine `{r.engine}`, scope `{r.scope}`.",
            "",
            r.docs.strip(),
            "",
            f"*Known false positives:* {_para(r.false_positives)}",
            "",
            f"*Fix:* {_para(r.fix_hint)}",
            "",
            "*References:*",
            "",
        ]
        lines += [f"- {ref['what']} - {ref['where']}" for ref in r.references]
        lines += ["", "*Fixtures:* " + ", ".join(f"`{k}`" for k in kinds)]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def update_rules_md(path: Path, rules: list[Rule], rules_dir: Path) -> str:
    """Return the file content with the generated part replaced (or appended)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Rules\n\n"
    generated = rule_list_markdown(rules, rules_dir)
    if BEGIN in text and END in text:
        head = text.split(BEGIN, 1)[0]
        tail = text.split(END, 1)[1].lstrip("\n")
        return head + generated + (("\n" + tail) if tail else "")
    return text.rstrip("\n") + "\n\n" + generated
