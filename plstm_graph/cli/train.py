"""``plstm-graph train``: train a model on a dataset (default: pLSTM on the embedded TPSA set)."""
import argparse
import json
import time
from pathlib import Path

from . import LazyHelpFormatter

#: Options that map one-to-one onto TrainConfig fields (``None``: not given on the command line).
TRAINING_OPTIONS = ("preset", "epochs", "batch_size", "lr", "weight_decay", "warmup_epochs",
                    "lr_schedule", "hidden", "layers", "heads", "pooling", "dropout", "folds",
                    "limit", "data_root", "device")
RUN_OPTIONS = ("dataset", "model", "seed") + TRAINING_OPTIONS


def registered_models() -> list[str]:
    from ..nn import models  # noqa: F401  (registers the built-in models)
    from ..nn.registry import model_names
    return model_names()


def names_epilog() -> str:
    """Datasets and models, listed from their registries (imports them: shown with --help only)."""
    from ..data import dataset_names
    return (f"datasets: {', '.join(dataset_names())}, tu:NAME, ape-SIZE, longrange-KIND-DEPTH. "
            f"models: {', '.join(registered_models())} (see `plstm-graph models`).")


def fold_list(text: str) -> list[int]:
    """``"0-4"`` -> ``[0, 1, 2, 3, 4]``, ``"1,3,7-8"`` -> ``[1, 3, 7, 8]``."""
    folds = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            folds += list(range(int(first), int(last if dash else first) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected fold numbers and ranges such as 0-4 or 1,3,7-8, got {text!r}") from None
    if not folds:
        raise argparse.ArgumentTypeError(f"the range {text!r} holds no fold")
    return folds


def add_training_options(parser) -> None:
    """Options shared by ``train`` and ``compare``; unset ones take the dataset's defaults
    (``plstm_graph.train.defaults``)."""
    from ..train.defaults import BASE, PRESETS
    group = parser.add_argument_group(
        "training (unset options take the dataset family's defaults, see "
        "plstm_graph/train/defaults.py; config.json records what was used)")
    group.add_argument("--preset", choices=tuple(PRESETS),
                       help="named settings: 'paper' = the pLSTM paper's graph setup")
    group.add_argument("--epochs", type=int, help=f"training epochs (base {BASE['epochs']})")
    group.add_argument("--batch-size", type=int,
                       help=f"graphs per global batch, over all processes (base {BASE['batch_size']})")
    group.add_argument("--lr", type=float, help=f"AdamW peak learning rate (base {BASE['lr']:g})")
    group.add_argument("--weight-decay", type=float,
                       help=f"AdamW weight decay (base {BASE['weight_decay']:g})")
    group.add_argument("--warmup-epochs", type=float,
                       help="linear warm-up before the cosine decay (default 5%% of the epochs, at most 5)")
    # schedule.LR_SCHEDULES spelled out, as --pooling's choices are (no torch import for --help).
    group.add_argument("--lr-schedule", choices=("batch", "epoch"),
                       help="step the warm-up and cosine every batch (base) or every epoch (the "
                            "official pLSTM graph code's; --preset paper)")
    group.add_argument("--hidden", type=int, help=f"feature size of every block (base {BASE['hidden']})")
    group.add_argument("--layers", type=int, help=f"number of blocks (base {BASE['layers']})")
    group.add_argument("--heads", type=int, help=f"pLSTM / attention heads (base {BASE['heads']})")
    # nn.models.POOLINGS spelled out: importing it would load torch_geometric for --help too
    # (tests/cli/test_train_cli.py keeps the two equal).
    group.add_argument("--pooling", choices=("mean", "sum", "max"),
                       help="graph pooling (default: the dataset's, else the model's)")
    group.add_argument("--dropout", type=float,
                       help="dropout on the encoded node features and the head's input while "
                            f"training (base {BASE['dropout']:g})")
    group.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                       help="an option of the model (repeatable; VALUE read as JSON when it "
                            "parses, else as text), e.g. --model-option arrangement=paired; "
                            "see `plstm-graph models`")
    group.add_argument("--folds", type=int,
                       help="k-fold datasets (TU): run folds 0..FOLDS-1 and report mean ± std "
                            "(default: fold 0 only; 10 = the full protocol)")
    group.add_argument("--only-folds", type=fold_list, metavar="LIST",
                       help="train just these folds of the --folds protocol now, e.g. 0-4 here "
                            "and 5-9 in a second process with the same --out; each process "
                            "reuses the finished folds, and the last to finish writes the summary")
    group.add_argument("--limit", type=int, help="use at most LIMIT graphs of each split (quick checks)")
    group.add_argument("--data-root",
                       help="data folder (default: $PLSTM_GRAPH_DATA_ROOT, else datasets/)")
    group.add_argument("--device", help="torch device (default cpu; 'cuda' = this process's GPU "
                                        "under torchrun)")
    group.add_argument("--threads", type=int, default=1,
                       help="CPU threads for torch (default 1: small graph batches run fastest "
                            "single-threaded on shared CPUs)")
    group.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model on a dataset", formatter_class=LazyHelpFormatter,
        description="Train a graph- or node-level model. Without arguments: pLSTM on the embedded "
                    "TPSA molecules (rdkit's first_5k.tpsa.csv), a few minutes on 2 CPU cores. "
                    "Under `torchrun --nproc-per-node N -m plstm_graph train ...` it trains with "
                    "DistributedDataParallel.",
        epilog=names_epilog)
    parser.add_argument("--dataset", help="dataset name (default tpsa; see `plstm-graph data list`)")
    parser.add_argument("--model", help="a registered model (default plstm; listed below)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--out", help="run folder (default runs/<dataset>-<model>-<time>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the interrupted run in DIR with its saved settings "
                             "(with any number of processes; --device may move it)")
    add_training_options(parser)
    parser.set_defaults(func=run, on_interrupt=interrupted)


def model_options(args) -> dict:
    """``--model-option KEY=VALUE`` pairs as the ``model_options`` of a TrainConfig (empty when
    none is given)."""
    options = {}
    for item in args.model_option or ():
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-option must be KEY=VALUE with KEY an option name, "
                             f"got {item!r}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def training_settings(args, names=TRAINING_OPTIONS) -> dict:
    """The TrainConfig fields set on the command line (``names``, and ``--model-option``)."""
    given = {key: getattr(args, key) for key in names if getattr(args, key) is not None}
    options = model_options(args)
    return given | ({"model_options": options} if options else {})


def config_from_args(args):
    from ..train.config import TrainConfig
    return TrainConfig(**training_settings(args, RUN_OPTIONS))


def setup_torch(args) -> None:
    import torch
    if args.threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {args.threads}")
    torch.set_num_threads(args.threads)


def report(summary: dict, run_dir: Path) -> None:
    metric = summary["metric"]
    if summary.get("status") == "diverged":
        where = summary.get("diverged") or {}
        print(f"diverged: the training loss became {where.get('loss', 'non-finite')} "
              f"(epoch {where.get('epoch', '?')}, step {where.get('step', '?')}); lower --lr. "
              f"run folder: {run_dir}")
        return
    if summary.get("pending_folds"):
        print(f"the folds of --only-folds are finished; folds "
              f"{', '.join(map(str, summary['pending_folds']))} are still to run (in another "
              f"process, or here without --only-folds), and the mean ± std waits for them. "
              f"run folder: {run_dir}")
        return
    if "per_fold" in summary:
        print(f"test {metric}: {summary['test_mean']:.4f} ± {summary['test_std']:.4f} over "
              f"{summary['folds']} folds (valid {summary['valid_mean']:.4f} ± "
              f"{summary['valid_std']:.4f}; test at the last epoch "
              f"{summary['test_last_mean']:.4f} ± {summary['test_last_std']:.4f}); "
              f"{summary['parameters']:,} parameters")
    else:
        print(f"test {metric}: {summary['test']:.4f} at epoch {summary['best_epoch']} of best "
              f"valid {metric} {summary['valid']:.4f}; {summary['parameters']:,} parameters")
        if summary.get(f"extrapolation_{metric}") is not None:
            print(f"extrapolation {metric}: {summary[f'extrapolation_{metric}']:.4f} on "
                  f"{summary['extrapolation_graphs']} larger images")
        if summary.get("mean_predictor_test") is not None:
            r2 = summary.get("test_r2")
            print(f"predicting the training mean gives test {metric} "
                  f"{summary['mean_predictor_test']:.4f}"
                  + (f"; the model's test R^2 is {r2:.3f}" if r2 is not None else ""))
    print(f"run folder: {run_dir}")


def resolve_run(args):
    """The run's config and folder, validated before any work is done."""
    from ..train.run import load_config
    if args.resume:
        given = [f"--{key.replace('_', '-')}" for key in RUN_OPTIONS + ("out", "model_option")
                 if getattr(args, key) is not None and key != "device"]
        if given:
            raise ValueError(f"--resume takes every setting but --device from "
                             f"{args.resume}/config.json; drop {', '.join(given)}")
        return load_config(args.resume, device=args.device), Path(args.resume)
    config = config_from_args(args)
    run_dir = Path(args.out or Path("runs") / (f"{config.dataset}-{config.model}-"
                                               f"{time.strftime('%Y%m%d-%H%M%S')}"))
    return config, run_dir


def run(args) -> int:
    from ..train import distributed
    from ..train.data import DataCache
    from ..train.run import run_training
    setup_torch(args)
    config, run_dir = resolve_run(args)
    args.run_dir = run_dir
    cache = DataCache()
    cache.dataset(config.dataset, config.data_root)  # unknown / missing data fails here
    context = distributed.init(config.device)
    if context.is_main:
        print(f"training {config.model} on {config.dataset}"
              f"{f' with {context.world_size} processes' if context.distributed else ''}; "
              f"run folder: {run_dir}", flush=True)
    summary = run_training(config, run_dir, progress=not args.no_progress, cache=cache,
                           only_folds=args.only_folds)
    if context.is_main:
        report(summary, run_dir)
    return 1 if summary.get("status") == "diverged" else 0


def interrupted(args) -> str:
    run_dir = getattr(args, "run_dir", None)
    if run_dir is None or not Path(run_dir).exists():
        return "nothing was saved"
    return (f"{run_dir} keeps every finished epoch; resume with\n"
            f"  plstm-graph train --resume {run_dir}")
