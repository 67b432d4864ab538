"""Command line: the only place that reads argv, sets up logging and maps errors to exit codes.

Exit codes: 0 nothing to report, 1 findings or regressions, 2 bad input or usage,
3 infrastructure failure (tree, build, QEMU).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from reviewbot import __version__
from reviewbot.commands import COMMANDS, load
from reviewbot.config import load_settings
from reviewbot.errors import EXIT_BAD_INPUT, EXIT_INFRA, InfraError, ReviewbotError

log = logging.getLogger("reviewbot")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2, as promised
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"reviewbot: error: {message}\n")



def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv, so that only its module is imported (start-up time
    counts when reviewbot runs once per mail or per patch); None: register them all."""
    skip_value = False
    for token in argv:
        if skip_value:
            skip_value = False
            continue
        if token == "--config":
            skip_value = True
            continue
        if token.startswith("-"):
            continue
        name = token.replace("-", "_")
        return name if name in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reviewbot",
        description="Review Linux kernel patch series about memcg and mm->owner.",
    )
    parser.add_argument("--version", action="version", version=f"reviewbot {__version__}")
    parser.add_argument("--config", metavar="FILE", help="config.yaml to use")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS if only is None else (only,):
        try:
            module = load(name)
        except ModuleNotFoundError as exc:
            # A command whose optional dependencies are missing (e.g. the service extras)
            # stays visible and says what to install when run.
            if exc.name and exc.name.startswith("reviewbot.commands"):
                continue
            _register_missing(sub, name, exc)
            continue
        module.register(sub)
    return parser


def _register_missing(sub: argparse._SubParsersAction[_Parser], name: str,
                      exc: ImportError) -> None:
    cmd = sub.add_parser(name.replace("_", "-"), help=f"(unavailable: {exc})")

    def unavailable(args: argparse.Namespace, settings: object) -> int:
        raise InfraError(
            f"'{name}' needs a module that is not installed: {exc.name}; "
            "install reviewbot with the 'service' extra: pip install '.[service]'"
        )

    cmd.set_defaults(func=unavailable)


def main(argv: Sequence[str] | None = None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen_command(tokens))
    args = parser.parse_args(tokens)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        settings = load_settings(args.config)
        return int(args.func(args, settings))
    except ReviewbotError as exc:
        print(f"reviewbot: {exc}", file=sys.stderr)
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("reviewbot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # the edge: a bug, not bad input; say so and keep the traceback
        print("reviewbot: internal error (please report):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INFRA
