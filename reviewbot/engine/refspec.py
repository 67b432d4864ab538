"""Parameters of the ``refcount`` engine, parsed from a rule's YAML: acquire/release pairs,
iterators that hold a reference in their body, ownership transfers; and how an object
is named (``css_get(&memcg->css)`` and ``mem_cgroup_put(memcg)`` name the same one).

Shared by the path analysis (:mod:`refcount`) and the field-stores analysis
(:mod:`fieldstores`).
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from typing import Any

from reviewbot.facts.knowledge import load_knowledge

NULL_RE = re.compile(r"^(NULL|0)$")


_SPACES = re.compile(r"\s+")
# A parenthesised identifier before a member access: how a macro names its parameter.
_MACRO_PARAM = re.compile(r"\(([A-Za-z_]\w*)\)(?=->|\.)")
_CAST = re.compile(r"^\(\s*(struct\w+\*|\w+\*)\)")
_SELF_CSS = re.compile(r"(->|\.)(css|self)$")


@functools.lru_cache(maxsize=4096)
def normalize(expr: str) -> str:
    """Object name of an expression: ``&memcg->css`` -> ``memcg``, ``&cgrp->self`` ->
    ``cgrp``; ``(x)`` -> ``x``. (Memoised: the analyses ask again for the same argument
    texts, and it is a pure function of the string.)"""
    text = _SPACES.sub("", expr)
    changed = True
    while changed:
        before = text
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
        text = _CAST.sub("", text)  # a cast
        if text.startswith("&"):
            text = text[1:]
        text = _SELF_CSS.sub("", text)  # a cgroup's count is its self css
        text = _MACRO_PARAM.sub(r"\1", text)  # `(xa)->xa_lock` in a macro: `xa->xa_lock`
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
        self._matched: dict[str, tuple[Matched, ...]] = {}
        self._matched_pairs: tuple[Pair, ...] = ()

    def matching(self, name: str) -> tuple[Matched, ...]:
        """The pairs with a spec that matches the call ``name``, in order, each with its
        matching release and acquire specs. An analysis asks for every call of every path
        state; a pair's regexes are tried once per name (and again when ``pairs`` is
        replaced, as config_for() and with_helpers() do)."""
        if self._matched_pairs is not self.pairs or len(self._matched) >= 100_000:
            # (bounded: a config lives as long as the process, names come from patches)
            self._matched, self._matched_pairs = {}, self.pairs
        found = self._matched.get(name)
        if found is None:
            found = self._matched[name] = tuple(
                m for m in (Matched(p, tuple(s for s in p.release if s.call.match(name)),
                                    tuple(s for s in p.acquire if s.call.match(name)))
                            for p in self.pairs) if m.release or m.acquire)
        return found


@dataclass(frozen=True)
class Matched:
    """One pair's specs that match a call name (see Config.matching)."""

    pair: Pair
    release: tuple[CallSpec, ...]
    acquire: tuple[CallSpec, ...]


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


_HEAD, _TAIL = r"\b(?:", r")\s*\("


def _needle(names: list[str]) -> re.Pattern[str]:
    return re.compile(_HEAD + "|".join(f"(?:{n})" for n in names) + _TAIL)


# Searching a function for a needle makes the regex engine try its alternation (dozens of
# call names) at every word: a third of a millisecond per function, for each rule. When
# the alternation can match only whole words (names, groups, alternatives, quantifiers,
# \w and \d), a hit is a word at a word boundary followed by ``(``: the same answer comes
# from the function's called words, each matched whole against the alternation.
# (Possessive: after a shorter prefix of the word comes a word character, never "(", so
# giving characters back cannot match; it only cost a retry per character of every word.)
_WORD_CALL = re.compile(r"\b(\w++)\s*\(")
_WORDS_ONLY = re.compile(r"(?:[\w|()?*+]|\\[wd])*")


def called_words(text: str) -> frozenset[str]:
    """Every word followed by ``(`` in a text (what :func:`finds_call` matches)."""
    return frozenset(_WORD_CALL.findall(text))


@functools.lru_cache(maxsize=256)
def _word_matcher(needle: str) -> re.Pattern[str] | None:
    inner = needle[len(_HEAD):-len(_TAIL)]
    if not needle.startswith(_HEAD) or not needle.endswith(_TAIL) or \
            not _WORDS_ONLY.fullmatch(inner.replace("(?:", "(")):
        return None
    whole = re.compile(f"(?:{inner})")
    return None if whole.fullmatch("") else whole  # an empty match would need no word


def finds_call(needle: re.Pattern[str], text: str, words: frozenset[str] | None = None) -> bool:
    """``needle.search(text)`` for a needle of :func:`_needle`; ``words`` is
    :func:`called_words` of ``text`` when the caller keeps it."""
    whole = _word_matcher(needle.pattern)
    if whole is None:
        return needle.search(text) is not None
    return any(whole.fullmatch(w) for w in (called_words(text) if words is None else words))


def with_helpers(
    config: Config, needle: re.Pattern[str], helpers: dict[str, tuple[str, str]]
) -> tuple[Config, re.Pattern[str]]:
    """The config plus one acquire (``returns: true``) per helper of the patch that hands
    out a reference: ``helpers`` maps its name to (pair, the call it got the reference from).
    """
    if not helpers:
        return config, needle
    # Every function of a patch (and each of its rules' walks) asks with the same helpers:
    # one config per set, which keeps its matching() answers from walk to walk.
    key = (id(config), needle.pattern, tuple(sorted(helpers.items())))
    cached = _WITH_HELPERS.get(key)
    if cached is not None and cached[0] is config:
        return cached[1], cached[2]
    if len(_WITH_HELPERS) >= 512:  # (bounded: helper names come from patches)
        _WITH_HELPERS.clear()
    made = _with_helpers(config, helpers)
    _WITH_HELPERS[key] = (config, *made)
    return made


_WITH_HELPERS: dict[tuple[int, str, tuple[tuple[str, tuple[str, str]], ...]],
                    tuple[Config, Config, re.Pattern[str]]] = {}


def _with_helpers(config: Config, helpers: dict[str, tuple[str, str]]) -> tuple[Config, re.Pattern[str]]:
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


