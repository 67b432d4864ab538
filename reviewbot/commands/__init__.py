"""One module per subcommand; each exposes ``register(subparsers)``.

A module registers a parser whose defaults carry ``func(args, settings) -> int``. The list
in :data:`COMMANDS` is the order of ``reviewbot --help``.
"""

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
