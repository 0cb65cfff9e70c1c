"""Figures of a run folder: learning curves and the bar plot of a comparison.

Figures are drawn on ``matplotlib.figure.Figure`` objects and saved directly, without pyplot:
no global backend is chosen or changed (the user's notebook keeps its own), and nothing needs a
display.
"""
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def plot_learning_curve(history: list[dict], metric: str, path, title: str = "") -> Path:
    """Training loss (left) and the train / valid / test metric (right) per epoch."""
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_metric = fig.subplots(1, 2)
    ax_loss.plot(epochs, [row["train_loss"] for row in history], marker=".")
    ax_loss.set(xlabel="epoch", ylabel="training loss")
    for split in ("train", "valid", "test"):
        ax_metric.plot(epochs, [row[f"{split}_{metric}"] for row in history], marker=".",
                       label=split)
    ax_metric.set(xlabel="epoch", ylabel=metric)
    ax_metric.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def plot_comparison(results: dict, path, ylabel: str = "test metric") -> Path:
    """Grouped bars: one group per dataset, one bar per model, error bars = std.

    ``results[dataset][model] = (mean, std)``.
    """
    datasets = list(results)
    models = list(dict.fromkeys(model for row in results.values() for model in row))
    width = 0.8 / max(1, len(models))
    fig = Figure(figsize=(1.2 + 1.6 * len(datasets) * max(1, len(models)) / 3, 3.8))
    ax = fig.subplots()
    for i, model in enumerate(models):
        means = [results[d].get(model, (np.nan, np.nan))[0] for d in datasets]
        stds = [results[d].get(model, (np.nan, np.nan))[1] for d in datasets]
        ax.bar(np.arange(len(datasets)) + (i - (len(models) - 1) / 2) * width, means, width,
               yerr=stds, capsize=3, label=model)
    ax.set_xticks(np.arange(len(datasets)), datasets)
    ax.set_ylabel(ylabel)
    if models:
        ax.legend(fontsize="small", ncol=min(5, len(models)))
    else:  # every run diverged
        ax.text(0.5, 0.5, "no finished run", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
