"""``reviewbot rules list | explain ID | test [ID] | docs [--check]``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from reviewbot.config import Settings, project_root
from reviewbot.engine.loader import default_rules_dir, load_rules
from reviewbot.errors import EXIT_FINDINGS, EXIT_OK, BadInputError

# The fixture runner and the docs renderer are imported when used: `reviewbot --help`
# and the other commands should not pay for them at start-up.


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "rules",
        help="list, explain and test the review rules",
        description="Inspect the rules in rules/ (or --rules DIR / rules.path in config).",
    )
    parser.add_argument("--rules", type=Path, metavar="DIR", help="rules folder to use")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p_list = actions.add_parser("list", help="one line per rule")
    p_list.add_argument("--json", action="store_true")
    p_explain = actions.add_parser("explain", help="the documentation of one rule")
    p_explain.add_argument("rule_id", metavar="ID")
    p_test = actions.add_parser("test", help="run the bad/ok/todo fixtures of the rules")
    p_test.add_argument("rule_id", metavar="ID", nargs="?")
    p_test.add_argument("--linux", type=Path, metavar="DIR",
                        help="Linux 6.1 source for tree-mode fixtures (default $REVIEWBOT_LINUX_SRC)")
    p_test.add_argument("--tree", action="store_true",
                        help="run every fixture in tree mode (needs the Linux source)")
    p_test.add_argument("-v", "--verbose", action="store_true", help="show the findings")
    p_docs = actions.add_parser("docs", help="regenerate the rule list in docs/rules.md")
    p_docs.add_argument("--check", action="store_true", help="exit 1 when docs/rules.md is stale")
    p_docs.add_argument("--output", type=Path, default=None, help="file to update")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    rules_dir = args.rules or default_rules_dir(settings)
    if args.action == "list":
        return _list(rules_dir, args.json)
    if args.action == "explain":
        from reviewbot.engine.docs import explain  # this action only (start-up)

        (rule,) = load_rules(rules_dir, only=args.rule_id)
        sys.stdout.write(explain(rule))
        return EXIT_OK
    if args.action == "test":
        return _test(rules_dir, args, settings)
    return _docs(rules_dir, args)


def _list(rules_dir: Path, as_json: bool) -> int:
    rules = load_rules(rules_dir)
    if as_json:
        print(json.dumps([
            {"id": r.id, "title": r.title, "severity": r.severity, "confidence": r.confidence,
             "category": r.category, "engine": r.engine, "scope": r.scope,
             "issue_rule": r.issue_rule}
            for r in rules
        ], indent=2))
        return EXIT_OK
    width = max(len(r.id) for r in rules)
    for r in rules:
        print(f"{r.id:<{width}}  {r.severity:<7} {r.confidence:<8} {r.engine:<10} {r.title}")
    return EXIT_OK


def _test(rules_dir: Path, args: argparse.Namespace, settings: Settings) -> int:
    # this action only: `rules list` starts in 0.1 s
    from reviewbot.engine.fixtures import discover, linux_source, run_fixture

    rules = {r.id: r for r in load_rules(rules_dir, only=args.rule_id)}
    fixtures, problems = discover(rules_dir)
    linux = args.linux or linux_source()
    if args.linux and not (args.linux / "Makefile").is_file():
        raise BadInputError("not a Linux source tree", source=str(args.linux))
    failed = 0
    counts = {"pass": 0, "fail": 0, "xfail": 0, "skip": 0}
    for problem in problems:
        print(f"PROBLEM {problem}")
        failed += 1
    for rid in rules:
        if not any(f.rule == rid and f.kind == "bad" for f in fixtures) or not any(
            f.rule == rid and f.kind == "ok" for f in fixtures
        ):
            print(f"PROBLEM {rid}: needs at least one bad-NN and one ok-NN fixture")
            failed += 1
    start = time.monotonic()
    for fx in fixtures:
        if fx.rule not in rules:
            continue
        result = run_fixture(rules[fx.rule], fx, settings, linux=linux, tree=args.tree)
        if result.skipped:
            status = "skip"
        elif fx.kind == "todo":
            status = "xfail" if not result.passed else "fail"  # a fixed gap: rename to bad-
        else:
            status = "pass" if result.passed else "fail"
        counts[status] += 1
        failed += status == "fail"
        note = f" ({result.skipped})" if result.skipped else ""
        if status == "fail" and fx.kind == "todo":
            note = " (todo fixture now passes: rename it to bad-NN)"
        print(f"{status.upper():5} {fx.rule}/{fx.name} [{result.mode}]{note}")
        if args.verbose or status == "fail":
            for f in result.findings:
                print(f"        {f.severity} {f.file}:{f.line} {f.function}: {f.message}")
    print(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['xfail']} expected failures, "
        f"{counts['skip']} skipped in {time.monotonic() - start:.1f} s"
    )
    return EXIT_FINDINGS if failed else EXIT_OK


def _docs(rules_dir: Path, args: argparse.Namespace) -> int:
    from reviewbot.engine.docs import update_rules_md  # this action only (start-up)

    target = args.output or project_root() / "docs" / "rules.md"
    rules = load_rules(rules_dir)
    new = update_rules_md(target, rules, rules_dir)
    old = target.read_text(encoding="utf-8") if target.is_file() else ""
    if args.check:
        if new != old:
            print(f"{target} is out of date: run `reviewbot rules docs`")
            return EXIT_FINDINGS
        print(f"{target} is up to date")
        return EXIT_OK
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(new, encoding="utf-8")
    print(f"wrote {target}")
    return EXIT_OK
