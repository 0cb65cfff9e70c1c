"""The ``plstm-graph`` command line (also ``python -m plstm_graph``): one module per subcommand.

Each module in :data:`COMMANDS` exposes ``add_parser(subparsers)``, which registers its
subcommand(s) and sets ``func`` (called with the parsed namespace, returning an exit code).
Every subcommand reports expected failures the same way: one line on stderr,
``plstm-graph <command>: error: <message>``, and exit code 2 (argparse's own convention);
Ctrl-C exits with 130 after saying how to continue.
"""
import argparse
import importlib
import sys


class LazyHelpFormatter(argparse.HelpFormatter):
    """Help text may be a callable, evaluated only when help is shown: listing the registered
    models and datasets imports them, which ``--help`` alone should not pay for elsewhere."""

    def _format_text(self, text):
        return super()._format_text(text() if callable(text) else text)

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("data", "models", "train", "evaluate", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plstm-graph",
        description="Train, evaluate and compare pLSTM and baseline graph models.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def fail(command: str, message) -> int:
    print(f"plstm-graph {command}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    command = args.command if args.command != "data" else f"data {args.data_command}"
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        hint = getattr(args, "on_interrupt", None)
        print("\ninterrupted" + (f": {hint(args)}" if hint else ""), file=sys.stderr)
        return 130
    except (ValueError, OSError) as error:  # bad input, missing or unwritable files
        return fail(command, error)


if __name__ == "__main__":
    sys.exit(main())
