"""The ``plstm-graph`` command line: one module per subcommand group.

Each module in :data:`COMMANDS` exposes ``add_parser(subparsers)``, which registers its
subcommand(s) and sets ``func`` (called with the parsed namespace, returning an exit code).
"""
import argparse
import importlib
import sys

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("data", "train", "evaluate", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plstm-graph",
        description="Train, evaluate and compare pLSTM and baseline graph models.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
