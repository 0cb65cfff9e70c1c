"""``plstm-graph evaluate RUN_DIR``: re-evaluate a saved run's best checkpoint on its splits."""
import math


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="re-evaluate a saved run on its splits",
        description="Load the best-validation checkpoint of every (fold) run in RUN_DIR and "
                    "score it on the run's train, valid and test splits.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by `plstm-graph train`")
    parser.add_argument("--device", help="torch device (default: the run's)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    parser.set_defaults(func=run)


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def run(args) -> int:
    import torch

    from ..train.run import evaluate_run
    torch.set_num_threads(max(1, args.threads))
    result = evaluate_run(args.run_dir, device=args.device)
    metric = result["metric"]
    print(f"{result['model']} on {result['dataset']} ({metric}, best-validation checkpoint)")
    print(f"{'fold':>4}  {'epoch':>5}  {'train':>8}  {'valid':>8}  {'test':>8}")
    for row in result["runs"]:
        fold = "-" if row["fold"] is None else row["fold"]
        print(f"{fold:>4}  {row['epoch']:>5}  {_fmt(row['train']):>8}  {_fmt(row['valid']):>8}  "
              f"{_fmt(row['test']):>8}")
    if len(result["runs"]) > 1:
        print(f"test {metric}: {result['test_mean']:.4f} ± {result['test_std']:.4f} over "
              f"{len(result['runs'])} folds")
    else:
        print(f"test {metric}: {result['test_mean']:.4f}")
    return 0
