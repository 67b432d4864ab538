"""One module per subcommand; each exposes ``register(subparsers)``.

A module registers a parser whose defaults carry ``func(args, settings) -> int``. The list
in :data:`COMMANDS` is the order of ``reviewbot --help``.
"""

from __future__ import annotations

from types import ModuleType

COMMANDS = (
    "series",
    "review",
    "rules",
    "tree",
    "boot",
    "scan",
    "serve",
    "worker",
    "deliver",
    "retry",
    "check_b4",
)


def load(name: str) -> ModuleType:
    """The module of one subcommand. Imported only when named: ``reviewbot rules`` starts in
    0.08 s, and importing every command (the pipeline, the scanner) takes 0.4 s, which counts
    when reviewbot runs once per mail or per patch."""
    if name == "series":
        from reviewbot.commands import series

        return series
    if name == "review":
        from reviewbot.commands import review

        return review
    if name == "rules":
        from reviewbot.commands import rules

        return rules
    if name == "tree":
        from reviewbot.commands import tree

        return tree
    if name == "boot":
        from reviewbot.commands import boot

        return boot
    if name == "scan":
        from reviewbot.commands import scan

        return scan
    if name == "serve":
        from reviewbot.commands import serve

        return serve
    if name == "worker":
        from reviewbot.commands import worker

        return worker
    if name == "deliver":
        from reviewbot.commands import deliver

        return deliver
    if name == "retry":
        from reviewbot.commands import retry

        return retry
    if name == "check_b4":
        from reviewbot.commands import check_b4

        return check_b4
    raise KeyError(name)
