"""A run folder: one training run, or one per fold of a k-fold dataset, and its re-evaluation.

Layout of ``run_dir``::

    config.json                      the TrainConfig
    last.pt, best.pt                 checkpoints (single split), or fold_<k>/... per fold
    metrics.jsonl, learning_curve.png, summary.json
"""
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .callbacks import BEST, CURVE, SUMMARY, EpochHook, LearningCurve, ProgressBar, RunFolder
from .checkpoint import load_checkpoint, read_json, write_json
from .config import TrainConfig
from .data import DataCache, PreparedGraphs, make_splits
from .tasks import Task, score
from .trainer import Trainer, batches, build_model, predict

CONFIG = "config.json"


def prepared_graphs(spec, config: TrainConfig, cache: DataCache | None = None) -> PreparedGraphs:
    """The dataset's graphs with the line graphs ``config.model`` reads (and no others)."""
    transform = config.model_spec().transform(config.layers, getattr(spec, "orientation", "index"))
    return (cache or DataCache()).graphs(spec, transform)


def folds_of(config: TrainConfig, spec) -> list[int | None]:
    """``[None]`` for a dataset with a fixed split, else the folds ``config.folds`` asks for."""
    if spec.num_folds == 1:
        if config.folds not in (None, 1):
            raise ValueError(f"folds={config.folds} needs a k-fold dataset; {config.dataset} has "
                             f"a fixed train/valid/test split")
        return [None]
    count = config.folds or 1
    if count > spec.num_folds:
        raise ValueError(f"folds must be at most {spec.num_folds} for {config.dataset}, got {count}")
    return list(range(count))


def chosen_folds(config: TrainConfig, spec, only_folds=None) -> list[int | None]:
    """The folds to train now: all of :func:`folds_of`, or the subset ``only_folds`` of them
    (sorted, each once), so that several processes can share one k-fold run folder."""
    folds = folds_of(config, spec)
    if only_folds is None:
        return folds
    if folds == [None]:
        raise ValueError(f"only_folds needs a k-fold dataset; {config.dataset} has a fixed "
                         f"train/valid/test split")
    chosen = sorted(set(only_folds))
    outside = [fold for fold in chosen if fold not in folds]
    if outside or not chosen:
        raise ValueError(f"only_folds must name folds among 0..{len(folds) - 1} (the run's "
                         f"folds={len(folds)}), got {list(only_folds)}")
    return chosen


def fold_dir(run_dir: Path, fold: int | None) -> Path:
    return run_dir if fold is None else run_dir / f"fold_{fold}"


def aggregate(config: TrainConfig, spec, fold_summaries: list[dict]) -> dict:
    """Mean and standard deviation (over folds, ``ddof=0``) of the per-fold summaries."""
    summary = {"dataset": config.dataset, "model": config.model, "metric": spec.metric,
               "higher_is_better": spec.higher_is_better, "folds": len(fold_summaries),
               "parameters": fold_summaries[0]["parameters"],
               "world_size": fold_summaries[0].get("world_size", 1),
               "status": ("diverged" if any(s.get("status") == "diverged" for s in fold_summaries)
                          else "finished")}
    for key in ("train", "valid", "test", "test_last", "seconds_per_epoch"):
        values = np.array([np.nan if s.get(key) is None else s[key] for s in fold_summaries],
                          dtype=float)
        summary[f"{key}_mean"], summary[f"{key}_std"] = float(values.mean()), float(values.std())
    summary["per_fold"] = [{key: s.get(key) for key in ("best_epoch", "train", "valid", "test",
                                                         "test_last", "status")}
                           for s in fold_summaries]
    return summary


def check_config(run_dir: Path, config: TrainConfig) -> None:
    """Raises unless ``run_dir`` is new or holds a run of ``config`` (nothing is written).

    The fold count may differ: each fold is its own sub-run, unchanged by how many others
    there are, so a 3-fold run folder extends to the 10-fold protocol. So may the device: a
    run moves between machines, with the same mathematics up to float rounding.
    """
    path = run_dir / CONFIG
    if path.exists():
        saved = load_config(run_dir, device=config.device)
        if replace(saved, folds=config.folds) != config:
            changed = [key for key, value in config.to_dict().items()
                       if saved.to_dict()[key] != value]
            raise ValueError(f"run folder {run_dir} holds a run with other settings "
                             f"({', '.join(changed)}); resume it with --resume {run_dir} or "
                             f"choose another --out")


def run_training(config: TrainConfig, run_dir, progress: bool = True, on_epoch_end=None,
                 spec=None, cache: DataCache | None = None, only_folds=None) -> dict:
    """Trains ``config`` in ``run_dir`` (continuing whatever the folder already holds) and
    returns its summary; for k-fold datasets one sub-run per fold and the mean ± std.

    The run folder is created when training starts (not when the data or the settings fail).
    Under ``torchrun`` every process calls this; rank 0 alone writes the folder.

    Args:
        spec: the dataset object; loaded with :func:`plstm_graph.data.get_dataset` if ``None``.
        on_epoch_end: ``on_epoch_end(epoch, record)`` hook, after the epoch is saved.
        cache: datasets and prepared graphs shared with other runs (a comparison's).
        only_folds: train just these folds of a k-fold run (others may run in other processes
            on the same folder). The returned summary then covers the finished folds, and
            lists the unfinished ones as ``pending_folds``; ``summary.json`` of the folder is
            written once every fold has finished.
    """
    run_dir = Path(run_dir)
    cache = cache or DataCache()
    spec = spec if spec is not None else cache.dataset(config.dataset, config.data_root)
    folds = chosen_folds(config, spec, only_folds)
    check_config(run_dir, config)
    graphs = prepared_graphs(spec, config, cache)
    context = distributed.init(config.device)
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        # New, or other folds, or another device: config.json records the latest command.
        if not (run_dir / CONFIG).exists() or read_json(run_dir / CONFIG) != config.to_dict():
            write_json(config.to_dict(), run_dir / CONFIG)
    summaries = []
    for fold in folds:
        out = fold_dir(run_dir, fold)
        if (out / SUMMARY).exists():  # finished (its config was checked above)
            summaries.append(read_json(out / SUMMARY))
            continue
        desc = f"{config.model} on {config.dataset}" + ("" if fold is None else f" fold {fold}")
        callbacks = [RunFolder(out), LearningCurve(out / CURVE, title=desc)]
        if progress and context.is_main:
            callbacks.append(ProgressBar(desc))
        if on_epoch_end is not None:
            callbacks.append(EpochHook(on_epoch_end))
        trainer = Trainer(config, spec, make_splits(spec, graphs, fold, config.limit), callbacks,
                          context=context)
        summary = trainer.fit()
        summary["run_dir"] = str(out)
        summaries.append(summary)
        if summary["status"] == "diverged":
            break
    distributed.barrier(context)
    if folds == [None]:
        return summaries[0]
    pending = []
    if only_folds is not None and summaries[-1]["status"] != "diverged":
        # The folder's summary waits for every fold, from whichever process ends last.
        every = folds_of(config, spec)
        pending = [fold for fold in every if not (fold_dir(run_dir, fold) / SUMMARY).exists()]
        if not pending:
            summaries = [read_json(fold_dir(run_dir, fold) / SUMMARY) for fold in every]
    summary = aggregate(config, spec, summaries)
    summary["run_dir"] = str(run_dir)
    if pending:
        summary["pending_folds"] = pending
    elif context.is_main:
        write_json(summary, run_dir / SUMMARY)
    return summary


def load_config(run_dir, device: str | None = None) -> TrainConfig:
    """The run's saved settings; ``device`` replaces the saved one (a CUDA run's folder then
    loads on a machine without CUDA)."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a plstm-graph run folder")
    return TrainConfig.from_dict(read_json(path) | ({} if device is None else {"device": device}))


def evaluate_run(run_dir, spec=None, device: str | None = None) -> dict:
    """Re-evaluates the best checkpoint of every (fold) run in ``run_dir`` on its splits.

    Returns ``{"metric", "runs": [{"fold", "epoch", "train", "valid", "test"}, ...]}`` plus
    ``test_mean`` / ``test_std`` over the runs.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir, device=device)
    cache = DataCache()
    spec = spec if spec is not None else cache.dataset(config.dataset, config.data_root)
    graphs = prepared_graphs(spec, config, cache)
    task = Task(spec.task_type, spec.num_tasks, getattr(spec, "task_level", "graph"))
    runs = []
    for fold in folds_of(config, spec):
        path = fold_dir(run_dir, fold) / BEST
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: the run has not finished an epoch yet")
        checkpoint = load_checkpoint(path)
        model = build_model(config, spec)
        model.load_state_dict(checkpoint["model"])
        model.to(config.device)
        row = {"fold": fold, "epoch": checkpoint["epoch"]}
        for name, split in make_splits(spec, graphs, fold, config.limit):
            loader = batches(split, config.batch_size)
            row[name] = score(spec, *predict(model, loader, task, torch.device(config.device))) \
                if split else math.nan
        runs.append(row)
    tests = np.array([row["test"] for row in runs], dtype=float)
    return {"dataset": config.dataset, "model": config.model, "metric": spec.metric,
            "runs": runs, "test_mean": float(tests.mean()), "test_std": float(tests.std())}
