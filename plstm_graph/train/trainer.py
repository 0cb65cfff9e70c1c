"""The training loop of one run: AdamW, warm-up + cosine schedule, gradient clipping, best-
validation checkpoint, per-epoch metrics, and exact resumption from the last epoch."""
import copy
import json
import math
import time
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from ..nn.models import GraphModel, count_parameters
from .checkpoint import (load_checkpoint, rng_states, save_checkpoint, seed_everything,
                         set_rng_states, write_json, write_text)
from .config import TrainConfig
from .data import Splits
from .plots import plot_learning_curve
from .schedule import warmup_cosine
from .tasks import Task, score

LAST, BEST, METRICS, SUMMARY, CURVE = ("last.pt", "best.pt", "metrics.jsonl", "summary.json",
                                      "learning_curve.png")


def build_model(config: TrainConfig, spec) -> GraphModel:
    """The :class:`~plstm_graph.nn.GraphModel` that ``config`` asks for, shaped for ``spec``."""
    return GraphModel(config.model, spec.num_tasks, features=spec.features,
                      node_channels=spec.num_node_features,
                      edge_channels=spec.num_edge_features or 0, hidden=config.hidden,
                      layers=config.layers, heads=config.heads, pooling=config.pooling)


def better(value: float, best: float | None, higher_is_better: bool) -> bool:
    """Strictly better (ties keep the earlier epoch); a number beats NaN."""
    if best is None or math.isnan(best):
        return not math.isnan(value) or best is None
    if math.isnan(value):
        return False
    return value > best if higher_is_better else value < best


@torch.no_grad()
def predict(model: GraphModel, loader, task: Task, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and predictions of every graph of ``loader`` (CPU tensors)."""
    model.eval()
    ys, preds = [], []
    for batch in loader:
        batch = batch.to(device)
        preds.append(model(batch).cpu())
        ys.append(task.targets(batch.y).cpu())
    return torch.cat(ys), torch.cat(preds)


class Trainer:
    """Trains ``config.model`` on ``splits`` and keeps the run folder ``run_dir`` up to date.

    After every epoch it writes, in this order: ``best.pt`` (when validation improved),
    ``last.pt`` (model, optimizer, scheduler, RNG states incl. the shuffling generator,
    history) and a ``metrics.jsonl`` line. All files are written atomically, so a run stopped
    at any point (Ctrl-C, a crash) resumes from its last finished epoch and ends exactly as an
    uninterrupted run with the same config would.

    Args:
        config: the run's settings.
        spec: the dataset (see :func:`plstm_graph.data.get_dataset`): ``task_type``,
            ``num_tasks``, ``metric``, ``higher_is_better``, ``evaluate``, features.
        splits: train / valid / test graphs.
        run_dir: the run folder (created if needed).
        progress: show tqdm progress bars.
        on_epoch_end: called as ``on_epoch_end(epoch, record)`` after an epoch is saved.
        desc: progress-bar label.
    """

    def __init__(self, config: TrainConfig, spec, splits: Splits, run_dir, progress: bool = True,
                 on_epoch_end=None, desc: str | None = None):
        if not splits.train:
            raise ValueError("the training split is empty")
        self.config, self.spec, self.splits = config, spec, splits
        self.run_dir = Path(run_dir)
        self.progress, self.on_epoch_end = progress, on_epoch_end
        self.desc = desc or f"{config.model} on {config.dataset}"
        self.metric = spec.metric
        self.device = torch.device(config.device)
        self.task = Task(spec.task_type, spec.num_tasks)

        seed_everything(config.seed)
        self.model = build_model(config, spec)
        mean, std = self.task.target_scale([data.y for data in splits.train])
        self.model.set_target_scale(mean, std)
        self.task.scale = std
        self.model.to(self.device)
        self.num_parameters = count_parameters(self.model)

        # A generator of its own makes the shuffling order part of the saved state.
        self.generator = torch.Generator().manual_seed(config.seed)
        self.train_loader = DataLoader(splits.train, batch_size=config.batch_size, shuffle=True,
                                       generator=self.generator)
        self.eval_loaders = {name: DataLoader(graphs, batch_size=config.batch_size)
                             for name, graphs in splits if graphs}
        steps_per_epoch = len(self.train_loader)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.scheduler = warmup_cosine(self.optimizer,
                                       round(config.warmup_epochs * steps_per_epoch),
                                       config.epochs * steps_per_epoch)
        self.history: list[dict] = []
        self.best: dict | None = None
        self.epoch = 0  # epochs finished

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "rng": rng_states(self.generator), "history": self.history, "best": self.best,
                "config": self.config.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"], self.generator)
        self.history, self.best, self.epoch = state["history"], state["best"], state["epoch"]

    def resume(self) -> bool:
        """Loads ``last.pt`` when the run folder has one; ``metrics.jsonl`` is rewritten from
        the checkpoint's history (an epoch logged after the last checkpoint is dropped)."""
        path = self.run_dir / LAST
        if not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path, map_location=self.device))
        write_text("".join(json.dumps(row) + "\n" for row in self.history), self.run_dir / METRICS)
        return True

    # ---------------------------------------------------------------- loop

    def score(self, split: str) -> float:
        if split not in self.eval_loaders:
            return math.nan
        y, pred = predict(self.model, self.eval_loaders[split], self.task, self.device)
        return score(self.spec, y, pred)

    def train_epoch(self, bar) -> tuple[float, float]:
        self.model.train()
        total, count, ys, preds = 0.0, 0, [], []
        update_every = max(1, len(self.train_loader) // 10)
        for step, batch in enumerate(self.train_loader):
            batch = batch.to(self.device)
            pred = self.model(batch)
            loss = self.task.loss(pred, batch.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
            self.optimizer.step()
            self.scheduler.step()
            total += loss.item() * batch.num_graphs
            count += batch.num_graphs
            ys.append(self.task.targets(batch.y).detach().cpu())
            preds.append(pred.detach().cpu())
            if bar is not None:
                postfix = {"loss": f"{total / count:.4f}"}
                if step % update_every == update_every - 1:
                    bar.running_metric = score(self.spec, torch.cat(ys), torch.cat(preds))
                if getattr(bar, "running_metric", None) is not None:
                    postfix[self.metric] = f"{bar.running_metric:.4f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update()
        return total / count, score(self.spec, torch.cat(ys), torch.cat(preds))

    def fit(self) -> dict:
        """Trains the remaining epochs and returns the run's summary (also ``summary.json``)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        config, metric = self.config, self.metric
        epochs = tqdm(range(self.epoch, config.epochs), desc=self.desc, initial=self.epoch,
                      total=config.epochs, unit="epoch", disable=not self.progress, dynamic_ncols=True)
        if self.progress:
            epochs.write(f"{self.desc}: {self.num_parameters:,} parameters"
                         + (f"; resuming {self.run_dir} after epoch {self.epoch}" if resumed else ""))
        for epoch in epochs:
            start = time.perf_counter()
            with tqdm(total=len(self.train_loader), desc=f"epoch {epoch + 1}", leave=False,
                      unit="batch", disable=not self.progress, dynamic_ncols=True) as bar:
                train_loss, train_metric = self.train_epoch(bar if self.progress else None)
            seconds = time.perf_counter() - start
            record = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
                      "train_loss": train_loss, f"train_{metric}": train_metric,
                      f"valid_{metric}": self.score("valid"), f"test_{metric}": self.score("test"),
                      "train_seconds": seconds}
            self.history.append(record)
            self.epoch = epoch + 1
            if better(record[f"valid_{metric}"], self.best and self.best[f"valid_{metric}"],
                      self.spec.higher_is_better):
                self.best = {**record, "state": copy.deepcopy(self.model.state_dict())}
                save_checkpoint({"model": self.best["state"], "epoch": self.epoch,
                                 "config": config.to_dict()}, self.run_dir / BEST)
            save_checkpoint(self.state_dict(), self.run_dir / LAST)
            with open(self.run_dir / METRICS, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            epochs.set_postfix({"loss": f"{train_loss:.4f}",
                                f"valid_{metric}": f"{record[f'valid_{metric}']:.4f}",
                                f"test_{metric}": f"{record[f'test_{metric}']:.4f}"})
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, record)
        return self.finish()

    def finish(self) -> dict:
        metric, best = self.metric, self.best
        summary = {
            "dataset": self.config.dataset, "model": self.config.model, "metric": metric,
            "higher_is_better": self.spec.higher_is_better, "parameters": self.num_parameters,
            "epochs": self.epoch, "best_epoch": best["epoch"],
            "train": best[f"train_{metric}"], "valid": best[f"valid_{metric}"],
            "test": best[f"test_{metric}"],
            "seconds_per_epoch": sum(r["train_seconds"] for r in self.history) / len(self.history),
            "num_graphs": {name: len(graphs) for name, graphs in self.splits},
            "run_dir": str(self.run_dir),
        }
        write_json(summary, self.run_dir / SUMMARY)
        plot_learning_curve(self.history, metric, self.run_dir / CURVE,
                            title=f"{self.desc} ({self.num_parameters:,} parameters)")
        return summary
