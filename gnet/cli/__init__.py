"""Command line: ``gnet COMMAND ...`` (also ``python -m gnet ...``); ``gnet --help`` lists the commands.

One module per subcommand, each with ``NAME``, ``HELP``, ``ORDER`` (its place in the help),
``configure(parser)`` and ``run(args) -> int``; every module of this package but ``options`` is a
subcommand, found at start-up, so adding a command is adding a file. The options several commands
share are defined once in :mod:`gnet.cli.options`. Subcommand modules import torch and the rest of gnet inside
``configure`` or ``run``, and only the subcommand being run is configured, so ``gnet --help``
imports no torch at all.

Success exits 0. A user error (:class:`gnet.errors.GNetError`) prints its one sentence
on stderr and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import select
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

from ..errors import GNetError

__all__ = ["EXIT_USER_ERROR", "build_parser", "main"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 1  # what Python itself exits with on EPIPE
_NOT_COMMANDS = {"options"}


def commands() -> list[ModuleType]:
    """Every subcommand module of this package, in help order."""
    found = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if info.name not in _NOT_COMMANDS
    ]
    return sorted(found, key=lambda m: (m.ORDER, m.NAME))


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand it names gets its options.

    A subcommand's options may need torch (``train`` reads its defaults off ``TrainConfig``);
    configuring only the one being run keeps ``gnet --help`` and a mistyped command instant.
    Without ``argv`` every subcommand is configured.
    """
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    parser = argparse.ArgumentParser(prog="gnet", description="Look inside GoogLeNet (Inception v1).")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in commands():
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        if chosen is None or chosen == command.NAME:
            command.configure(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # torch.load warns about pickle protocols on stderr before gnet can say what is wrong with the file;
    # the one sentence gnet prints is all a user should read there.
    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away (`gnet ... | head`) shows here, not in the exit's flush
        return code
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # another pipe (a DataLoader worker's): a real failure
        # Not a failure to report: the rest of the output goes nowhere, as Python's signal docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except GNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on its write end)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return False  # stdout is no file (a test's capture): the broken pipe is another one
    if not hasattr(select, "poll"):
        return True  # Windows: no poll; take it as stdout's, as Python's own exit does
    poll = select.poll()
    poll.register(fd, select.POLLERR)
    return any(events & select.POLLERR for _, events in poll.poll(0))
