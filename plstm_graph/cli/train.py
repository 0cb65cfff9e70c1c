"""``plstm-graph train``: train a model on a dataset (default: pLSTM on the embedded TPSA set)."""
import argparse
import time
from pathlib import Path

from ..nn.models import MIXERS, POOLINGS
from ..train.config import TrainConfig

#: Options that map one-to-one onto TrainConfig fields (``None``: not given on the command line).
TRAINING_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "hidden",
                    "layers", "heads", "pooling", "folds", "limit", "data_root", "device")
RUN_OPTIONS = ("dataset", "model", "seed") + TRAINING_OPTIONS
DEFAULTS = TrainConfig()


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``compare``."""
    d = DEFAULTS
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, help=f"training epochs (default {d.epochs})")
    group.add_argument("--batch-size", type=int, help=f"graphs per batch (default {d.batch_size})")
    group.add_argument("--lr", type=float, help=f"AdamW peak learning rate (default {d.lr:g})")
    group.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {d.weight_decay:g})")
    group.add_argument("--warmup-epochs", type=float,
                       help="linear warm-up before the cosine decay (default 5%% of the epochs, at most 5)")
    group.add_argument("--hidden", type=int, help=f"feature size of every block (default {d.hidden})")
    group.add_argument("--layers", type=int, help=f"number of blocks (default {d.layers})")
    group.add_argument("--heads", type=int, help=f"pLSTM / attention heads (default {d.heads})")
    group.add_argument("--pooling", choices=tuple(POOLINGS),
                       help="graph pooling (default: mean for plstm and attention, sum for gin, gcn, gat)")
    group.add_argument("--folds", type=int,
                       help="k-fold datasets (TU): run folds 0..FOLDS-1 and report mean ± std "
                            "(default: fold 0 only; 10 = the full protocol)")
    group.add_argument("--limit", type=int, help="use at most LIMIT graphs of each split (quick checks)")
    group.add_argument("--data-root", help="data folder (default: $PLSTM_GRAPH_DATA_ROOT, else datasets/)")
    group.add_argument("--device", help=f"torch device (default {d.device})")
    group.add_argument("--threads", type=int, default=1,
                       help="CPU threads for torch (default 1: small graph batches run fastest "
                            "single-threaded on shared CPUs)")
    group.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model on a dataset",
        description="Train a graph-level model. Without arguments: pLSTM on the embedded TPSA "
                    "molecules (rdkit's first_5k.tpsa.csv), a few minutes on 2 CPU cores.")
    parser.add_argument("--dataset", help=f"dataset name (default {DEFAULTS.dataset}; "
                                          "see `plstm-graph data list`)")
    parser.add_argument("--model", choices=MIXERS, help=f"mixing layer (default {DEFAULTS.model})")
    parser.add_argument("--seed", type=int, help=f"random seed (default {DEFAULTS.seed})")
    parser.add_argument("--out", help="run folder (default runs/<dataset>-<model>-<time>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the interrupted run in DIR with its saved settings")
    add_training_options(parser)
    parser.set_defaults(func=run)


def config_from_args(args) -> TrainConfig:
    given = {key: getattr(args, key) for key in RUN_OPTIONS if getattr(args, key) is not None}
    return TrainConfig(**given)


def setup_torch(args) -> None:
    import torch
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)


def report(summary: dict, run_dir: Path) -> None:
    metric = summary["metric"]
    if "per_fold" in summary:
        print(f"test {metric}: {summary['test_mean']:.4f} ± {summary['test_std']:.4f} over "
              f"{summary['folds']} folds (valid {summary['valid_mean']:.4f} ± "
              f"{summary['valid_std']:.4f}); {summary['parameters']:,} parameters")
    else:
        print(f"test {metric}: {summary['test']:.4f} at epoch {summary['best_epoch']} of best "
              f"valid {metric} {summary['valid']:.4f}; {summary['parameters']:,} parameters")
    print(f"run folder: {run_dir}")


def run(args) -> int:
    from ..train.run import load_config, load_dataset, run_training
    try:
        setup_torch(args)
        if args.resume:
            given = [f"--{key.replace('_', '-')}" for key in RUN_OPTIONS + ("out",)
                     if getattr(args, key) is not None]
            if given:
                raise ValueError(f"--resume takes every setting from {args.resume}/config.json; "
                                 f"drop {', '.join(given)}")
            run_dir = Path(args.resume)
            config = load_config(run_dir)
        else:
            config = config_from_args(args)
            run_dir = Path(args.out or Path("runs") / (f"{config.dataset}-{config.model}-"
                                                       f"{time.strftime('%Y%m%d-%H%M%S')}"))
        load_dataset(config.dataset, config.data_root)  # unknown / missing data fails here
        print(f"training {config.model} on {config.dataset}; run folder: {run_dir}", flush=True)
        summary = run_training(config, run_dir, progress=not args.no_progress,
                               on_epoch_end=None)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {run_dir} keeps every finished epoch; resume with\n"
              f"  plstm-graph train --resume {run_dir}")
        return 130
    except (ValueError, FileNotFoundError) as error:
        print(f"plstm-graph train: error: {error}")
        return 2
    report(summary, run_dir)
    return 0
