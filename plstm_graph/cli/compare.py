"""``plstm-graph compare``: several models on the same datasets, splits and seeds."""
from pathlib import Path

from .train import add_training_options, registered_models, setup_torch, training_settings


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(seed) for seed in _names(text)]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="train several models on the same data and tabulate them",
        description="Train every model on every dataset with every seed (same splits), then "
                    "write OUT/results.md (markdown table), OUT/results.json and OUT/results.png "
                    "(bar plot). Finished runs in OUT are reused and interrupted ones resumed.")
    parser.add_argument("--dataset", required=True,
                        help="dataset name, or several separated by commas")
    parser.add_argument("--models",
                        help="comma-separated registered models (default: all; see `plstm-graph models`)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")
    add_training_options(parser)
    parser.set_defaults(func=run, on_interrupt=lambda args: (
        f"rerun the same command to continue; finished runs in {args.out} are reused and the "
        f"interrupted one resumes"))


def run(args) -> int:
    from ..train.compare import JSON, PLOT, TABLE, compare, markdown_table
    setup_torch(args)
    valid = registered_models()
    models = _names(args.models) if args.models is not None else valid
    unknown = [model for model in models if model not in valid]
    if unknown or not models:
        raise ValueError(f"--models: unknown {', '.join(unknown) or '(none given)'}; "
                         f"valid models: {', '.join(valid)}")
    datasets = _names(args.dataset)
    if not datasets:
        raise ValueError("--dataset: give at least one dataset name")
    settings = training_settings(args)
    rows = compare(datasets, models, _seeds(args.seeds), args.out,
                   progress=not args.no_progress, only_folds=args.only_folds, **settings)
    print(markdown_table(rows), end="")
    pending = sum(row["pending_folds"] for row in rows)
    if pending:
        print(f"{pending} runs (folds x seeds) are still to run (--only-folds): the table "
              f"covers the finished ones; the process that finishes last writes the whole table")
    out = Path(args.out)
    print(f"wrote {out / TABLE}, {out / JSON} and {out / PLOT}")
    return 1 if any(row.get("status") == "diverged" for row in rows) else 0
