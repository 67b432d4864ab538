"""Parameters of the ``refcount`` engine, parsed from a rule's YAML: acquire/release pairs,
iterators that hold a reference in their body, ownership transfers; and how an object
is named (``css_get(&memcg->css)`` and ``mem_cgroup_put(memcg)`` name the same one).

Shared by the path analysis (:mod:`refcount`) and the field-stores analysis
(:mod:`fieldstores`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from reviewbot.facts.knowledge import load_knowledge

NULL_RE = re.compile(r"^(NULL|0)$")


def normalize(expr: str) -> str:
    """Object name of an expression: ``&memcg->css`` -> ``memcg``, ``&cgrp->self`` ->
    ``cgrp``; ``(x)`` -> ``x``."""
    text = re.sub(r"\s+", "", expr)
    changed = True
    while changed:
        before = text
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
        text = re.sub(r"^\(\s*(struct\w+\*|\w+\*)\)", "", text)  # a cast
        if text.startswith("&"):
            text = text[1:]
        text = re.sub(r"(->|\.)(css|self)$", "", text)  # a cgroup's count is its self css
        changed = text != before
    return text


@dataclass(frozen=True)
class CallSpec:
    call: re.Pattern[str]
    arg: int | None
    returns: bool
    conditional: bool
    zero: bool = False  # conditional on returning 0 (mutex_lock_interruptible())

    @staticmethod
    def of(raw: dict[str, Any]) -> CallSpec:
        cond = raw.get("conditional")
        return CallSpec(
            re.compile(f"^(?:{raw['call']})$"),
            raw.get("arg"),
            bool(raw.get("returns")),
            bool(cond),
            cond == "zero",
        )


@dataclass(frozen=True)
class Pair:
    name: str
    acquire: tuple[CallSpec, ...]
    release: tuple[CallSpec, ...]
    keyless: bool


@dataclass(frozen=True)
class Iterator:
    macro: re.Pattern[str]
    var: int
    brk: CallSpec
    pair: str


def _object_pairs(names: list[str]) -> list[dict[str, Any]]:
    """Pairs of the counted objects kernel.yaml describes (css, task, mm, kref, ...)."""
    objects = load_knowledge().objects
    return [{"name": name, **objects[name]} for name in names]


class Config:
    def __init__(self, params: dict[str, Any]) -> None:
        self.pairs = tuple(
            Pair(
                p["name"],
                tuple(CallSpec.of(a) for a in p["acquire"]),
                tuple(CallSpec.of(r) for r in p["release"]),
                bool(p.get("keyless")),
            )
            for p in [*(params.get("pairs") or []), *_object_pairs(params.get("objects") or [])]
        )
        self.iterators = tuple(
            Iterator(re.compile(f"^(?:{i['macro']})$"), i["var"], CallSpec.of(i["break"]), i["pair"])
            for i in params.get("iterators") or []
        )
        transfer = params.get("transfer") or {}
        self.transfer_store = transfer.get("store", True)
        self.transfer_return = transfer.get("return", True)
        self.consumers = tuple(CallSpec.of(c) for c in transfer.get("consumers") or [])
        self.report = set(params.get("report") or ["leak", "double-release"])
        self.max_states = int(params.get("max-states", 20000))
        # Functions of the patch that return a reference: name -> the call they got it from.
        self.helpers: dict[str, str] = {}
        self.names: list[str] = []  # every call name of the pairs and iterators (regexes)


_CONFIGS: dict[int, tuple[dict[str, Any], Config, re.Pattern[str]]] = {}


def config_for(params: dict[str, Any]) -> tuple[Config, re.Pattern[str]]:
    """Parsed pairs, and a regex of every call name they use (to skip functions fast)."""
    cached = _CONFIGS.get(id(params))
    if cached is not None and cached[0] is params:
        return cached[1], cached[2]
    config = Config(params)
    # Iterator breaks release the iterator's pair.
    config.pairs = config.pairs + tuple(Pair(it.pair, (), (it.brk,), False) for it in config.iterators)
    names = [s.call.pattern[4:-2] for p in config.pairs for s in (*p.acquire, *p.release)]
    names += [it.macro.pattern[4:-2] for it in config.iterators]
    config.names = names
    needle = _needle(names)
    _CONFIGS[id(params)] = (params, config, needle)
    return config, needle


def _needle(names: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(f"(?:{n})" for n in names) + r")\s*\(")


def with_helpers(
    config: Config, needle: re.Pattern[str], helpers: dict[str, tuple[str, str]]
) -> tuple[Config, re.Pattern[str]]:
    """The config plus one acquire (``returns: true``) per helper of the patch that hands
    out a reference: ``helpers`` maps its name to (pair, the call it got the reference from).
    """
    if not helpers:
        return config, needle
    new = copy.copy(config)
    new.pairs = tuple(
        Pair(
            p.name,
            p.acquire + tuple(
                CallSpec(re.compile(f"^(?:{re.escape(name)})$"), None, True, False)
                for name, (pair, _) in sorted(helpers.items()) if pair == p.name
            ),
            p.release,
            p.keyless,
        )
        for p in config.pairs
    )
    new.helpers = {name: origin for name, (_, origin) in helpers.items()}
    new.names = [*config.names, *(re.escape(n) for n in sorted(helpers))]
    return new, _needle(new.names)


