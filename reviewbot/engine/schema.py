"""The rule file schema and its validator, with errors a rule author can act on.

A rule is one YAML mapping. The validator names the file, the key path and what was
expected ("rules/x.yaml: refcount.pairs[0].acquire[1]: unknown key 'cal' (did you mean
'call'?)"), and checks references: every rule must cite at least one review, commit or
source line, and the fixtures named in it must exist. It is deliberately hand-written (no
jsonschema dependency): the schema is small and the messages matter more than generality.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from reviewbot.model import CONFIDENCES, SEVERITIES

ENGINES = ("pattern", "refcount", "ast", "coccinelle", "context", "consistency")
SCOPES = ("added-lines", "hunk", "function", "series")
REFERENCE_KINDS = ("review", "commit", "source", "thread", "doc")

Spec = Mapping[str, Any]

# key -> (type, required). A nested dict is a sub-schema; ("list", X) a list of X.
_STR: Spec = {"type": str}
_BOOL: Spec = {"type": bool}
_REGEX: Spec = {"type": str, "regex": True}
_REGEXES: Spec = {"list": _REGEX}

_REFERENCE: Spec = {
    "keys": {
        "kind": {"type": str, "choices": REFERENCE_KINDS, "required": True},
        "what": {"type": str, "required": True},
        "where": {"type": str, "required": True},
        "quote": _STR,
    }
}

_CONDITION: Spec = {
    "keys": {
        "regex": {"type": str, "regex": True, "required": True},
        "lines": {"type": str, "choices": ("added", "removed", "context", "post", "any")},
        "in": {"type": str, "choices": ("hunk", "function", "file", "patch")},
    }
}

_PATTERN: Spec = {
    "keys": {
        "match": {"type": str, "regex": True, "required": True},
        "on-lines": {"type": str, "choices": ("added", "removed")},  # YAML 1.1 reads a bare `on` as true
        "all": {"list": _CONDITION},
        "any": {"list": _CONDITION},
        "none": {"list": _CONDITION},
        "functions": _REGEX,
        "not-functions": _REGEX,
        "moved-is-preexisting": _BOOL,
        "trigger": _CONDITION,  # series scope: only when the series does this
        "search-tree": _BOOL,  # series scope: also `git grep` the applied worktree
    }
}

_CALLSPEC: Spec = {
    "keys": {
        "call": {"type": str, "regex": True, "required": True},
        "arg": {"type": int},
        "returns": _BOOL,
        "conditional": _BOOL,
    }
}

_REFCOUNT: Spec = {
    "keys": {
        "analysis": {"type": str, "choices": ("paths", "field-stores", "release-order", "get-removed")},
        # Counted objects of reviewbot/data/kernel.yaml (css, task, mm, kref, ...), by name.
        "objects": {"list": {"type": str}},
        "report-objects": {"list": {"type": str}},  # report leaks of these objects only
        "pairs": {
            "list": {
                "keys": {
                    "name": {"type": str, "required": True},
                    "acquire": {"list": _CALLSPEC, "required": True},
                    "release": {"list": _CALLSPEC, "required": True},
                    "keyless": _BOOL,
                }
            },
        },
        "iterators": {
            "list": {
                "keys": {
                    "macro": {"type": str, "regex": True, "required": True},
                    "var": {"type": int, "required": True},
                    "break": {"type": dict, "spec": _CALLSPEC, "required": True},
                    "pair": {"type": str, "required": True},
                }
            }
        },
        "transfer": {
            "keys": {
                "store": _BOOL,
                "return": _BOOL,
                "consumers": {"list": _CALLSPEC},
            }
        },
        "report": {"list": {"type": str, "choices": ("leak", "double-release", "use-after-release")}},
        "max-states": {"type": int},
        "not-functions": _REGEX,  # functions that hand the lock/reference to the caller
    }
}

_AST: Spec = {
    "keys": {
        "query": {"type": str, "required": True},
        "report": {"type": str, "required": True},
        "where": {"type": dict, "values": _REGEX},
        "where-not": {"type": dict, "values": _REGEX},
        "inside-loop": {
            "keys": {
                "macros": {"type": str, "regex": True, "required": True},
                "var-arg": {"type": int},
                "var-in": {"type": str},
                "unless-guard": _REGEX,
            }
        },
        "unless-function": _REGEXES,
        "requires-function": _REGEXES,
        "requires-are-evidence": _BOOL,  # the requires-function matches are evidence lines
        "functions": _REGEX,
        "not-functions": _REGEX,
        "prefilter": _REGEX,  # the function text must match before the query runs
        "through-helpers": {"type": str},  # capture whose where-regex also matches helpers
        "under-rcu": _BOOL,
        "assigned-under-rcu": {
            "keys": {"capture": {"type": str, "required": True}, "exclude": _REGEX}
        },
        "loaded-in-ended-rcu": {
            "keys": {"capture": {"type": str, "required": True}, "exclude": _REGEX}
        },
        "stored-before": {
            "keys": {"capture": {"type": str, "required": True}, "release": _REGEX}
        },
        "rcu-fields": {
            "keys": {
                "known": {
                    "list": {
                        "keys": {
                            "field": {"type": str, "required": True},
                            "base": {"type": str, "regex": True, "required": True},
                        }
                    }
                },
                "declared-in-patch": _BOOL,
                "from-facts": _BOOL,  # fields the kernel tree declares __rcu (and never plain)
                "accessors": _REGEX,
            }
        },
    }
}

_CONTEXT: Spec = {
    "keys": {
        "check": {"type": str, "required": True,
                  "choices": ("sleep-in-atomic", "irq-nesting", "rt-nesting", "double-lock", "imbalance",
                              "lock-not-held", "rcu-unprotected", "lock-order", "walk-unlocked", "scope-shrunk", "flush-deadlock",
                              "irq-unsafe", "stale-snapshot", "field-unlocked", "error-code",
                              "preempt-needed")},
        "max-chain": {"type": int},  # sleep-in-atomic: longest call chain to a sleeping primitive
        "kinds": {"list": {"type": str, "choices": ("spinlock", "raw_spinlock", "rwlock", "mutex",
                                                    "rwsem", "rcu", "preempt", "irq", "bh", "local_lock", "scope")}},
        "not-functions": _REGEX,
    }
}

_CONSISTENCY: Spec = {
    "keys": {
        "marked": {"type": str, "regex": True},  # accessors of a conversion (check: accessors)
        "check": {"type": str, "choices": ("accessors", "accounting", "charge-pairs")},  # default: accessors
    }
}

_COCCI: Spec = {
    "keys": {
        "file": {"type": str, "required": True},
        "timeout": {"type": int},
        "options": {"list": _STR},
    }
}

RULE: Spec = {
    "keys": {
        "id": {"type": str, "required": True},
        "title": {"type": str, "required": True},
        "severity": {"type": str, "choices": SEVERITIES, "required": True},
        "confidence": {"type": str, "choices": CONFIDENCES, "required": True},
        "category": {"type": str, "required": True},
        "scope": {"type": str, "choices": SCOPES, "required": True},
        "paths": {
            "keys": {"include": {"list": _STR}, "exclude": {"list": _STR}},
        },
        "engine": {"type": str, "choices": ENGINES, "required": True},
        "pattern": _PATTERN,
        "refcount": _REFCOUNT,
        "ast": _AST,
        "coccinelle": _COCCI,
        "context": _CONTEXT,
        "consistency": _CONSISTENCY,
        "message": {"type": str, "required": True},
        "false-positives": {"type": str, "required": True},
        "fix-hint": {"type": str, "required": True},
        "references": {"list": _REFERENCE, "required": True, "min": 1},
        "docs": {"type": str, "required": True},
        "issue-rule": {"type": int},  # number in the list, for traceability
    }
}


class SchemaError(ValueError):
    """One problem in a rule file; ``path`` is the key path inside the file."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def _type_name(spec: Spec) -> str:
    if "list" in spec:
        return "list"
    if "keys" in spec:
        return "mapping"
    t = spec.get("type")
    names: dict[Any, str] = {str: "string", bool: "boolean (true/false)", int: "integer"}
    return names.get(t, "mapping" if t is dict else str(t))


def validate(data: Any, spec: Spec = RULE, path: str = "") -> list[SchemaError]:
    """Return every schema problem found in ``data`` (empty list: valid)."""
    errors: list[SchemaError] = []
    if "keys" in spec:
        if not isinstance(data, Mapping):
            return [SchemaError(path, f"expected a mapping, got {type(data).__name__}")]
        keys: Mapping[str, Spec] = spec["keys"]
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in keys:
                close = difflib.get_close_matches(str(key), list(keys), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(
                    SchemaError(where, f"unknown key {key!r}{hint}; known: {', '.join(keys)}")
                )
                continue
            errors.extend(validate(value, keys[key], where))
        for key, sub in keys.items():
            if sub.get("required") and key not in data:
                errors.append(SchemaError(f"{path}.{key}" if path else key, "missing required key"))
        return errors
    if "list" in spec:
        if not isinstance(data, list):
            return [SchemaError(path, f"expected a list, got {type(data).__name__}")]
        if len(data) < spec.get("min", 0):
            errors.append(SchemaError(path, f"needs at least {spec['min']} entries"))
        for i, item in enumerate(data):
            errors.extend(validate(item, spec["list"], f"{path}[{i}]"))
        return errors
    expected = spec.get("type")
    if expected is not None:
        ok = isinstance(data, expected) and not (expected is int and isinstance(data, bool))
        if not ok:
            return [
                SchemaError(
                    path, f"expected {_type_name(spec)}, got {type(data).__name__} {data!r}"
                )
            ]
    if "choices" in spec and data not in spec["choices"]:
        errors.append(SchemaError(path, f"{data!r} is not one of {', '.join(spec['choices'])}"))
    if spec.get("regex") and isinstance(data, str):
        try:
            re.compile(data)
        except re.error as exc:
            errors.append(SchemaError(path, f"invalid regular expression: {exc}"))
    if "spec" in spec:
        errors.extend(validate(data, spec["spec"], path))
    if "values" in spec and isinstance(data, Mapping):
        for key, value in data.items():
            errors.extend(validate(value, spec["values"], f"{path}.{key}"))
    return errors
