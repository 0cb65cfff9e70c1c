"""Several models on the same datasets, splits and seeds: one run folder each, a markdown
table and a bar plot."""
from pathlib import Path

import numpy as np

from .checkpoint import write_json, write_text
from .config import TrainConfig
from .plots import plot_comparison
from .data import DataCache
from .run import run_training

TABLE, JSON, PLOT = "results.md", "results.json", "results.png"


def fold_values(summary: dict, key: str = "test") -> list[float]:
    """The test (or validation) metric of every fold of a run summary (one value without
    folds; NaN where a run diverged before its first epoch, or for ``key="test_last"`` in a
    summary written before that field existed).

    Args:
        key: ``"test"`` (at the epoch of best validation metric), ``"test_last"`` (at the
            last epoch) or ``"valid"`` (the best validation metric, which chose the epoch).
    """
    rows = summary["per_fold"] if "per_fold" in summary else [summary]
    return [float("nan") if row.get(key) is None else row[key] for row in rows]


def seconds_per_epoch(summary: dict) -> float | None:
    return summary.get("seconds_per_epoch", summary.get("seconds_per_epoch_mean"))


def mean_seconds(summaries: list[dict]) -> float | None:
    """Mean seconds per epoch over the runs that trained at least one epoch."""
    values = [v for v in map(seconds_per_epoch, summaries) if v is not None and v == v]
    return sum(values) / len(values) if values else None


def compare(datasets, models, seeds, out_dir, progress: bool = True, only_folds=None,
            **settings) -> list[dict]:
    """Trains every (dataset, model, seed) in ``out_dir/<dataset>/<model>/seed_<seed>``
    (finished runs are reused, interrupted ones resumed) and writes ``results.md``,
    ``results.json`` and ``results.png`` in ``out_dir``.

    Args:
        only_folds: train just these folds of every k-fold run (:func:`run_training`); a row
            then counts the folds finished so far (``runs``) and how many are still to run
            (``pending_folds``).
        settings: further :class:`TrainConfig` fields shared by every run.

    Returns one row per (dataset, model): test mean ± std over every fold of every seed.
    """
    out_dir = Path(out_dir)
    cache = DataCache()
    # Every setting and dataset is checked before the first run starts.
    configs = {(dataset, model, seed): TrainConfig(dataset=dataset, model=model, seed=seed,
                                                   **settings)
               for dataset in datasets for model in models for seed in seeds}
    for dataset in datasets:
        cache.dataset(dataset, settings.get("data_root"))
    rows = []
    for dataset in datasets:
        for model in models:
            summaries = [run_training(configs[dataset, model, seed],
                                      out_dir / dataset / model / f"seed_{seed}",
                                      progress=progress, cache=cache, only_folds=only_folds)
                         for seed in seeds]
            diverged = any(s.get("status") == "diverged" for s in summaries)
            row = {"dataset": dataset, "model": model, "metric": summaries[0]["metric"],
                   "parameters": summaries[0]["parameters"], "seeds": list(seeds),
                   "status": "diverged" if diverged else "finished",
                   "seconds_per_epoch": mean_seconds(summaries),
                   "pending_folds": sum(len(s.get("pending_folds", ())) for s in summaries)}
            # The two selection rules, and the validation metric that settings are chosen on.
            for key in ("test", "test_last", "valid"):
                values = np.array([v for s in summaries for v in fold_values(s, key)], dtype=float)
                row["runs"] = len(values)
                row[f"{key}_mean"] = None if diverged else float(values.mean())
                row[f"{key}_std"] = None if diverged else float(values.std())
            rows.append(row)
            write_results(rows, out_dir, settings)
    return rows


def _mean_std(mean: float | None, std: float | None) -> str:
    """``"0.8123 ± 0.0456"``; ``"-"`` where runs predate the value (NaN or missing)."""
    if mean is None or mean != mean:
        return "-"
    return f"{mean:.4f} ± {std:.4f}"


def markdown_table(rows: list[dict]) -> str:
    lines = ["| dataset | metric | model | parameters | valid (mean ± std) | test (mean ± std) "
             "| test at the last epoch | runs | s / epoch |",
             "|---|---|---|---:|---|---|---|---:|---:|"]
    for row in rows:
        diverged = row.get("status") == "diverged"
        test, last, valid = (
            "diverged" if diverged else _mean_std(row.get(f"{key}_mean"), row.get(f"{key}_std"))
            for key in ("test", "test_last", "valid"))
        seconds = "-" if row["seconds_per_epoch"] is None else f"{row['seconds_per_epoch']:.2f}"
        lines.append(f"| {row['dataset']} | {row['metric']} | {row['model']} | "
                     f"{row['parameters']:,} | {valid} | {test} | {last} | {row['runs']} | {seconds} |")
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict], out_dir: Path, settings: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    note = ("std over all runs (folds x seeds, ddof=0); the best validation metric of each "
            "run, and the test metric at that epoch and at the last epoch.\n\nSettings: " +
            ", ".join(f"{key}={value}" for key, value in settings.items()) + "\n\n")
    write_text(note + markdown_table(rows), out_dir / TABLE)
    write_json({"settings": settings, "rows": rows}, out_dir / JSON)
    results = {}
    for row in rows:
        if row.get("status") == "diverged":
            continue  # a diverged run has no score to draw
        results.setdefault(f"{row['dataset']}\n({row['metric']})", {})[row["model"]] = (
            row["test_mean"], row["test_std"])
    plot_comparison(results, out_dir / PLOT, ylabel="test metric (mean ± std)")
