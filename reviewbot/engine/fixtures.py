"""Rule fixtures: discover rules/tests/<id>/{bad,ok,todo}-NN-*.patch and run them.

* ``bad-NN-*.patch``: the rule must report at least one finding at warning or above that
  is not pre-existing;
* ``ok-NN-*.patch``: it must report none at warning or above;
* ``<kind>-NN-tree-*.patch``: only detectable with whole functions (the hunks do not
  show enough context); runs in tree mode;
* ``todo-NN-*.patch``: a known gap - a bad case the rule misses today. It is expected to
  fail; the day it passes, the suite fails until it is renamed to ``bad-`` (strict xfail).

Fixtures run in hunks mode (as ``review --no-tree``). Rules whose engine needs whole files
(Coccinelle) run in tree mode: a throw-away git repository holding the touched files of the
Linux source given (``--linux`` / ``REVIEWBOT_LINUX_SRC``), with the fixture applied by
``git am``; without that source they are reported as skipped.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot.config import Settings, TreeSettings, expand_path
from reviewbot.diff import parse_diff
from reviewbot.engine.loader import Rule
from reviewbot.engine.run import run_rules
from reviewbot.engine.stage import patch_context, series_lines
from reviewbot.errors import BadInputError, InfraError
from reviewbot.facts.build import facts_for
from reviewbot.facts.patch import patch_facts
from reviewbot.facts.tables import EMPTY, Facts
from reviewbot.gitcmd import git
from reviewbot.mail import read_series
from reviewbot.model import Finding

FIXTURE_NAME = re.compile(r"^(?P<kind>bad|ok|todo)-(?P<num>\d{2})-[a-z0-9][a-z0-9-]*\.patch$")

@dataclass(frozen=True)
class Fixture:
    rule: str
    path: Path
    kind: str  # bad | ok | todo

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def needs_tree(self) -> bool:
        """``bad-NN-tree-*.patch``: the hunks alone cannot show the problem."""
        return "-tree-" in self.path.name


@dataclass
class FixtureResult:
    fixture: Fixture
    passed: bool  # the expectation of a bad/ok fixture held; for todo: the rule fired
    skipped: str = ""  # why it did not run
    findings: list[Finding] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    mode: str = "hunks"

    @property
    def ok(self) -> bool:
        """What the suite wants: bad/ok pass, todo still fails (a strict expected failure)."""
        if self.skipped:
            return True
        return not self.passed if self.fixture.kind == "todo" else self.passed


def discover(rules_dir: Path) -> tuple[list[Fixture], list[str]]:
    """All fixtures, and problems: badly named files, folders without a rule."""
    fixtures: list[Fixture] = []
    problems: list[str] = []
    tests = rules_dir / "tests"
    if not tests.is_dir():
        return fixtures, problems
    rule_ids = {p.stem for p in rules_dir.glob("*.yaml")}
    for folder in sorted(p for p in tests.iterdir() if p.is_dir()):
        if folder.name not in rule_ids:
            problems.append(f"{folder}: fixture folder without a rule {folder.name}.yaml")
        for path in sorted(folder.iterdir()):
            m = FIXTURE_NAME.match(path.name)
            if m is None:
                problems.append(f"{path}: not named bad-NN-*.patch, ok-NN-*.patch or todo-NN-*.patch")
                continue
            fixtures.append(Fixture(folder.name, path, m.group("kind")))
    return fixtures, problems


def linux_source() -> Path | None:
    """The 6.1 source for tree-mode fixtures: $REVIEWBOT_LINUX_SRC, else the tree that
    `reviewbot tree init` made (default path); None when neither has a Makefile."""
    env = os.environ.get("REVIEWBOT_LINUX_SRC")
    source = Path(env) if env else expand_path(TreeSettings().path)
    return source if (source / "Makefile").is_file() else None


def tree_facts(linux: Path, settings: Settings) -> Facts:
    """The facts of the Linux tree (a git repository made by `tree init`), else none."""
    if not (linux / ".git").exists():
        return EMPTY
    return facts_for(linux, "HEAD", settings.path(settings.rules.facts_dir)) or EMPTY


def _needs_tree(rule: Rule) -> bool:
    return rule.engine == "coccinelle"


def run_fixture(
    rule: Rule, fixture: Fixture, settings: Settings, *, linux: Path | None = None, tree: bool = False,
    on_base: bool = False,
) -> FixtureResult:
    """Run one rule on one fixture; ``tree`` forces tree mode (needs ``linux``); ``on_base``
    reads the hunks on ``linux``'s files as a mail that did not apply is read on its
    nearest base (engine/rebuild.py), with the tree's facts."""

    found = read_series([fixture.path], settings)
    if not found.series or not found.series[0].patches:
        errors = "; ".join(e.error for e in found.errors) or "no patch found"
        raise BadInputError(f"fixture is not a patch mail: {errors}", source=str(fixture.path))
    series = found.series[0]
    patch = series.patches[0]
    removed, added = series_lines(series, settings)
    use_tree = tree or _needs_tree(rule) or fixture.needs_tree
    if on_base:
        if linux is None:
            return FixtureResult(fixture, False, skipped="needs the Linux 6.1 source (REVIEWBOT_LINUX_SRC)")
        ctx = patch_context(patch, settings, series_removed=removed, series_added=added,
                            base_reader=functools.partial(_read_source, linux))
        ctx.facts = patch_facts(ctx.all_post_views(), tree_facts(linux, settings))
        result = run_rules([rule], ctx)
        skipped = next((n for n in result.notices if "skipped" in n), "")
        res = _judge(fixture, result.findings, result.notices, "base")
        res.skipped = skipped  # (Coccinelle reads the applied tree only)
        return res
    if not use_tree:
        # Self-contained: the patch's own functions are its only facts, so a hunks-mode
        # fixture means the same on a machine without a kernel tree.
        ctx = patch_context(patch, settings, series_removed=removed, series_added=added)
        ctx.facts = patch_facts(ctx.all_post_views(), EMPTY)
        result = run_rules([rule], ctx)
        return _judge(fixture, result.findings, result.notices, "hunks")
    if linux is None:
        return FixtureResult(fixture, False, skipped="needs the Linux 6.1 source (REVIEWBOT_LINUX_SRC)")
    with applied_tree(fixture.path, patch.message.diff or "", linux, settings) as (repo, base, head):
        ctx = patch_context(
            patch, settings, worktree=repo, post_rev=head, base_rev=base,
            series_removed=removed, series_added=added,
        )
        ctx.facts = patch_facts(ctx.all_post_views(), tree_facts(linux, settings))
        result = run_rules([rule], ctx)
    skipped = next((n for n in result.notices if "skipped" in n), "")
    res = _judge(fixture, result.findings, result.notices, "tree")
    res.skipped = skipped
    return res


def _read_source(linux: Path, path: str) -> str | None:
    try:
        return (linux / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _judge(fixture: Fixture, findings: list[Finding], notices: list[str], mode: str) -> FixtureResult:
    strong = [f for f in findings if f.severity in ("error", "warning") and not f.preexisting]
    passed = not strong if fixture.kind == "ok" else bool(strong)
    return FixtureResult(fixture, passed, findings=findings, notices=notices, mode=mode)


@contextmanager
def applied_tree(
    mail: Path, diff: str, linux: Path, settings: Settings
) -> Iterator[tuple[Path, str, str]]:
    """A git repository with the files a patch touches (from ``linux``), patch applied.

    Yields (repository, base commit, patched commit).
    """
    files = parse_diff(diff, settings.mail, source=str(mail))
    tmp = Path(tempfile.mkdtemp(prefix="reviewbot-fixture-"))
    try:
        for fd in files:
            if fd.old_path is None:
                continue
            src = linux / fd.old_path
            if src.is_file():
                dest = tmp / fd.old_path
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
        _git(tmp, "init", "-q")
        _git(tmp, "add", "-A", "-f")
        _git(tmp, "commit", "-q", "--allow-empty", "-m", "base")
        base = _git(tmp, "rev-parse", "HEAD").strip()
        _git(tmp, "am", "-q", "--keep-cr", str(mail.resolve()))
        head = _git(tmp, "rev-parse", "HEAD").strip()
        yield tmp, base, head
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _git(repo: Path, *args: str) -> str:
    result = git(args, cwd=repo, timeout=60)
    if not result.ok:
        raise InfraError(f"git {args[0]} failed in fixture repository", command=list(args),
                         output=result.stderr + result.stdout)
    return result.stdout
