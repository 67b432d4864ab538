"""Discover and load rule files: one YAML file per rule in a folder, id == file stem.

Rules are never registered by hand: every ``*.yaml`` in the folder is a rule, and a rule
that does not validate stops the load with a :class:`BadInputError` naming the file and
the key, so that a typo never silently disables a check.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reviewbot.config import Settings, project_root
from reviewbot.engine.schema import validate
from reviewbot.errors import BadInputError

# libyaml's loader is ~10x faster than the pure-Python one; same safe subset.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_REFERENCE_WHERE = re.compile(
    r"^(https?://\S+|[0-9a-f]{12,40}\b.*|[\w./-]+\.(c|h|txt|rst|patch|md)(:\d+)?\b.*|"
    r"<[^>]+@[^>]+>.*|\.\./shared/\S+.*)$"
)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    confidence: str
    category: str
    scope: str
    engine: str
    params: dict[str, Any]  # the engine's own section
    message: str
    false_positives: str
    fix_hint: str
    references: tuple[dict[str, str], ...]
    docs: str
    path: Path
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    issue_rule: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def applies_to(self, file: str) -> bool:
        """Whether the rule looks at this file (include/exclude globs; ``**`` allowed)."""
        return _applies(self.include, self.exclude, file)

    @property
    def fixtures_dir(self) -> Path:
        return self.path.parent / "tests" / self.id


# Asked for every rule, file and (pattern rules) line of every patch: a pure function of
# two strings, answered once (bounded: paths come from patches).
@functools.lru_cache(maxsize=16384)
def _glob(path: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(path, pattern):
        return True
    # "mm/**" should match "mm/memcontrol.c" and "mm/x/y.c" alike.
    return pattern.endswith("/**") and path.startswith(pattern[:-2])


# Asked for every rule and file of every patch (and by the pattern engine per line's
# file): a pure function of the globs and the path, answered once (bounded like _glob).
@functools.lru_cache(maxsize=16384)
def _applies(include: tuple[str, ...], exclude: tuple[str, ...], file: str) -> bool:
    if include and not any(_glob(file, g) for g in include):
        return False
    return not any(_glob(file, g) for g in exclude)


def default_rules_dir(settings: Settings | None = None) -> Path:
    if settings is not None and settings.rules.path:
        return settings.path(settings.rules.path)
    return project_root() / "rules"


def load_rule(path: Path) -> Rule:
    """Load and validate one rule file.

    Raises:
        BadInputError: not YAML, schema errors (all of them, one per line), id != file stem,
            engine section missing, a .cocci file or reference that does not exist.
    """
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except OSError as exc:
        raise BadInputError(f"cannot read rule: {exc.strerror}", source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise BadInputError(f"not valid YAML: {exc}", source=str(path)) from exc
    errors = [str(e) for e in validate(data)]
    if isinstance(data, dict):
        rule_id = data.get("id")
        if isinstance(rule_id, str) and rule_id != path.stem:
            errors.append(f"id: {rule_id!r} must equal the file name {path.stem!r}")
        engine = data.get("engine")
        if isinstance(engine, str) and engine not in data:
            errors.append(f"{engine}: engine '{engine}' needs a '{engine}:' section")
        for other in ("pattern", "refcount", "ast", "coccinelle"):
            if other in data and other != engine:
                errors.append(f"{other}: section for engine '{other}' but engine is {engine!r}")
        if engine == "coccinelle" and isinstance(data.get("coccinelle"), dict):
            cocci = path.parent / str(data["coccinelle"].get("file", ""))
            if not cocci.is_file():
                errors.append(f"coccinelle.file: {cocci.name} does not exist beside the rule")
        for i, ref in enumerate(data.get("references") or []):
            where = ref.get("where") if isinstance(ref, dict) else None
            if isinstance(where, str) and not _REFERENCE_WHERE.match(where.strip()):
                errors.append(
                    f"references[{i}].where: {where!r} is not a URL, commit id, Message-ID, "
                    "or source path[:line]"
                )
    if errors:
        raise BadInputError(
            f"invalid rule ({len(errors)} problem{'s' if len(errors) > 1 else ''})",
            source=str(path),
            detail="\n".join(f"  {e}" for e in errors),
        )
    assert isinstance(data, dict)
    paths = data.get("paths") or {}
    return Rule(
        id=data["id"],
        title=data["title"],
        severity=data["severity"],
        confidence=data["confidence"],
        category=data["category"],
        scope=data["scope"],
        engine=data["engine"],
        params=dict(data[data["engine"]]),
        message=data["message"],
        false_positives=data["false-positives"],
        fix_hint=data["fix-hint"],
        references=tuple(data["references"]),
        docs=data["docs"],
        path=path,
        include=tuple(paths.get("include") or ()),
        exclude=tuple(paths.get("exclude") or ()),
        issue_rule=data.get("issue-rule"),
        raw=data,
    )


def load_rules(directory: Path, only: str | None = None) -> list[Rule]:
    """All rules of a folder, sorted by id; ``only`` selects one id.

    Loaded rules are cached per folder and file stamps (a worker reviews thousands of
    series with the same rules; an edited file is reloaded).

    Raises:
        BadInputError: the folder is missing, a rule is invalid, or ``only`` is unknown.
    """
    if not directory.is_dir():
        raise BadInputError("rules folder does not exist", source=str(directory))
    # One stat per file and no Path objects: this runs for every series reviewed, and the
    # stamps cost more than the rules they find in the cache.
    # (DirEntry.stat() follows symlinks as os.stat() does, without building each path.)
    with os.scandir(directory) as entries:
        found = sorted((e.name, e) for e in entries if e.name.endswith(".yaml"))
    stamp = tuple((name, (st := e.stat()).st_mtime_ns, st.st_size) for name, e in found)
    rules = list(_load_cached(str(directory.resolve()), stamp))
    if only is not None:
        rules = [r for r in rules if r.id == only]
        if not rules:
            raise BadInputError(f"no rule with id {only!r}", source=str(directory))
    return rules


@functools.lru_cache(maxsize=8)
def _load_cached(directory: str, stamp: tuple[tuple[str, int, int], ...]) -> tuple[Rule, ...]:
    return tuple(load_rule(Path(directory) / name) for name, _, _ in stamp)
