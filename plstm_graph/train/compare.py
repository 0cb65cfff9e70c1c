"""Several models on the same datasets, splits and seeds: one run folder each, a markdown
table and a bar plot."""
from pathlib import Path

import numpy as np

from .checkpoint import write_json, write_text
from .config import TrainConfig
from .plots import plot_comparison
from .run import run_training

TABLE, JSON, PLOT = "results.md", "results.json", "results.png"


def test_values(summary: dict) -> list[float]:
    """The test metric of every fold of a run summary (one value without folds)."""
    if "per_fold" in summary:
        return [row["test"] for row in summary["per_fold"]]
    return [summary["test"]]


def seconds_per_epoch(summary: dict) -> float:
    return summary.get("seconds_per_epoch", summary.get("seconds_per_epoch_mean"))


def compare(datasets, models, seeds, out_dir, progress: bool = True, **settings) -> list[dict]:
    """Trains every (dataset, model, seed) in ``out_dir/<dataset>/<model>/seed_<seed>``
    (finished runs are reused, interrupted ones resumed) and writes ``results.md``,
    ``results.json`` and ``results.png`` in ``out_dir``.

    Args:
        settings: further :class:`TrainConfig` fields shared by every run.

    Returns one row per (dataset, model): test mean ± std over every fold of every seed.
    """
    out_dir = Path(out_dir)
    rows = []
    for dataset in datasets:
        for model in models:
            summaries = []
            for seed in seeds:
                config = TrainConfig(dataset=dataset, model=model, seed=seed, **settings)
                summaries.append(run_training(config, out_dir / dataset / model / f"seed_{seed}",
                                              progress=progress))
            values = np.array([v for s in summaries for v in test_values(s)], dtype=float)
            rows.append({"dataset": dataset, "model": model, "metric": summaries[0]["metric"],
                         "parameters": summaries[0]["parameters"], "seeds": list(seeds),
                         "runs": len(values), "test_mean": float(values.mean()),
                         "test_std": float(values.std()),
                         "seconds_per_epoch": float(np.mean([seconds_per_epoch(s)
                                                             for s in summaries]))})
            write_results(rows, out_dir, settings)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = ["| dataset | metric | model | parameters | test (mean ± std) | runs | s / epoch |",
             "|---|---|---|---:|---|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['dataset']} | {row['metric']} | {row['model']} | "
                     f"{row['parameters']:,} | {row['test_mean']:.4f} ± {row['test_std']:.4f} | "
                     f"{row['runs']} | {row['seconds_per_epoch']:.2f} |")
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict], out_dir: Path, settings: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    note = ("std over all runs (folds x seeds, ddof=0); test metric at the epoch of best "
            "validation metric.\n\nSettings: " +
            ", ".join(f"{key}={value}" for key, value in settings.items()) + "\n\n")
    write_text(note + markdown_table(rows), out_dir / TABLE)
    write_json({"settings": settings, "rows": rows}, out_dir / JSON)
    results = {}
    for row in rows:
        results.setdefault(f"{row['dataset']}\n({row['metric']})", {})[row["model"]] = (
            row["test_mean"], row["test_std"])
    plot_comparison(results, out_dir / PLOT, ylabel="test metric (mean ± std)")
