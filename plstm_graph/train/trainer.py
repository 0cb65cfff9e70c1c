"""The training loop of one run: AdamW, warm-up + cosine schedule, gradient clipping,
best-validation selection and data-parallel training. Everything else a run does (progress,
checkpoints, logs, figures) is a :mod:`~plstm_graph.train.callbacks` callback."""
import math
import time

import torch
from torch_geometric import seed_everything
from torch_geometric.data import Batch

from ..nn.models import GraphModel, count_parameters
from . import distributed
from .callbacks import Callback, best_state
from .checkpoint import rng_states, set_rng_states
from .config import TrainConfig
from .data import Splits
from .schedule import epoch_warmup_cosine, warmup_cosine
from .tasks import Task, metric_names, scores


def build_model(config: TrainConfig, spec) -> GraphModel:
    """The :class:`~plstm_graph.nn.GraphModel` that ``config`` asks for, shaped for ``spec``."""
    return GraphModel(config.model, spec.num_tasks, features=spec.features,
                      node_channels=spec.num_node_features,
                      edge_channels=spec.num_edge_features or 0, hidden=config.hidden,
                      layers=config.layers, heads=config.heads, pooling=config.pooling,
                      task_level=getattr(spec, "task_level", "graph"),
                      orientation=getattr(spec, "orientation", "index"),
                      model_options=config.model_options, dropout=config.dropout)


def better(value: float, best: float | None, higher_is_better: bool) -> bool:
    """Strictly better (ties keep the earlier epoch); a number beats NaN."""
    if best is None or math.isnan(best):
        return not math.isnan(value) or best is None
    if math.isnan(value):
        return False
    return value > best if higher_is_better else value < best


def batches(graphs: list, batch_size: int):
    """``Batch``es of consecutive graphs (evaluation order)."""
    for start in range(0, len(graphs), batch_size):
        yield Batch.from_data_list(graphs[start:start + batch_size])


@torch.no_grad()
def predict(model: GraphModel, loader, task: Task, device) -> tuple:
    """Targets and predictions of every graph (or node) of ``loader``, as CPU tensors, plus the
    node-level root mask (``None`` for graph-level tasks)."""
    model.eval()
    ys, preds, roots = [], [], []
    for batch in loader:
        batch = batch.to(device)
        preds.append(model(batch).cpu())
        ys.append(task.targets(batch.y).cpu())
        if task.node_level:
            roots.append(batch.root_mask.cpu())
    return torch.cat(ys), torch.cat(preds), (torch.cat(roots) if task.node_level else None)


class Trainer:
    """Trains ``config.model`` on ``splits``: one job, the loop.

    The global batches of every epoch come from one shuffling generator seeded with
    ``config.seed``, whatever the number of processes: under ``torchrun`` each rank trains on
    its slice of every global batch in :class:`~torch.nn.parallel.DistributedDataParallel`, with
    the loss weighted so the averaged gradient is that of the whole global batch; metrics are
    gathered over ranks. A non-finite training loss stops the run (``status: "diverged"``).

    Args:
        config: the run's settings.
        spec: the dataset (see :func:`plstm_graph.data.get_dataset`): ``task_type``,
            ``num_tasks``, ``metric``, ``higher_is_better``, ``evaluate``, features.
        splits: train / valid / test graphs.
        callbacks: :class:`~plstm_graph.train.callbacks.Callback`s, called in order.
        context: the process's rank and world size (default: from the environment).
    """

    def __init__(self, config: TrainConfig, spec, splits: Splits, callbacks=(),
                 context: distributed.Context | None = None):
        if not splits.train:
            raise ValueError("the training split is empty")
        self.config, self.spec, self.splits = config, spec, splits
        self.callbacks: list[Callback] = list(callbacks)
        self.context = context or distributed.init(config.device)
        self.metric = spec.metric
        self.device = distributed.local_device(config.device)
        self.task = Task(spec.task_type, spec.num_tasks, getattr(spec, "task_level", "graph"))

        seed_everything(config.seed)
        self.model = build_model(config, spec)
        self.model.set_target_scale(*self.task.target_scale([data.y for data in splits.train]))
        self.model.to(self.device)
        self.task.scale = self.model.target_std  # one place: the model's buffer (checkpointed)
        self.num_parameters = count_parameters(self.model)
        self.ddp = (torch.nn.parallel.DistributedDataParallel(
            self.model, find_unused_parameters=True)  # e.g. GCN ignores the edge encoder
                    if self.context.distributed else self.model)

        # A generator of its own makes the shuffling order part of the saved state.
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps_per_epoch = math.ceil(len(splits.train) / config.batch_size)
        # The fused kernel updates every parameter in one call; the default loops over the
        # tensors with a dozen operator calls each (on CPU 7.8 against 1.1 ms per pLSTM step).
        params = list(self.model.parameters())
        self.optimizer = torch.optim.AdamW(
            params, lr=config.lr, weight_decay=config.weight_decay,
            fused=all(p.device.type in ("cpu", "cuda") for p in params) or None)
        self.step_per_batch = config.lr_schedule == "batch"
        self.scheduler = (
            warmup_cosine(self.optimizer, round(config.warmup_epochs * self.steps_per_epoch),
                          config.epochs * self.steps_per_epoch) if self.step_per_batch else
            epoch_warmup_cosine(self.optimizer, round(config.warmup_epochs), config.epochs))
        self.history: list[dict] = []
        self.best: dict | None = None
        self.epoch = 0  # epochs finished
        self.diverged: dict | None = None

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "rng": rng_states(self.generator), "history": self.history, "best": self.best,
                "config": self.config.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        # How AdamW runs (fused or not) is this process's choice, not the checkpoint's: a run
        # saved by an earlier version (unfused) resumes fused, with its step counts where the
        # fused kernel wants them.
        fused = [group["fused"] for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, flag in zip(self.optimizer.param_groups, fused):
            group["fused"] = flag
            for param in group["params"] if flag else ():
                if "step" in self.optimizer.state.get(param, {}):
                    step = self.optimizer.state[param]["step"]
                    self.optimizer.state[param]["step"] = step.to(param.device, torch.float32)
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"], self.generator)
        self.history, self.best, self.epoch = state["history"], state["best"], state["epoch"]

    # ---------------------------------------------------------------- loop

    def epoch_order(self) -> torch.Tensor:
        # What a DataLoader(shuffle=True, generator=g) draws per epoch: a base seed for its
        # workers, then the permutation. Kept so runs match those of earlier versions.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return torch.randperm(len(self.splits.train), generator=self.generator)

    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def evaluate(self, split: str) -> dict:
        """The dataset's metrics on ``split`` (NaN for an empty split), over all ranks."""
        graphs = getattr(self.splits, split)
        if not graphs:
            return dict.fromkeys(metric_names(self.spec), math.nan)
        return self._scores(graphs)

    def _scores(self, graphs: list) -> dict:
        """The metrics of the current model on ``graphs``: each rank predicts its shard, the
        predictions are gathered and scored together."""
        mine = distributed.shard(torch.arange(len(graphs)), self.context).tolist()
        loader = batches([graphs[i] for i in mine], self.config.batch_size)
        parts = [p for p in predict(self.model, loader, self.task, self.device) if p is not None]
        return scores(self.spec, *distributed.all_gather(parts, self.context))

    def train_epoch(self) -> tuple[float, dict]:
        """Trains one epoch; returns its mean training loss and training scores."""
        steps = self.train_steps()
        while True:
            try:
                next(steps)
            except StopIteration as finished:
                return finished.value

    def train_steps(self):
        """:meth:`train_epoch` as a generator that yields after every optimiser step (e.g. to
        interleave the steps of two models in a benchmark); it returns what
        :meth:`train_epoch` returns."""
        self.ddp.train()
        graphs, context = self.splits.train, self.context
        order = self.epoch_order().split(self.config.batch_size)
        self._call("on_epoch_start", self.epoch, len(order))
        total, count, ys, preds, roots = 0.0, 0, [], [], []
        for step, global_batch in enumerate(order):
            mine = distributed.shard(global_batch, context)
            batch = Batch.from_data_list([graphs[i] for i in mine.tolist()]).to(self.device)
            pred = self.ddp(batch)
            # DDP averages gradients over ranks: weight each rank's mean loss by its share of
            # the global batch, so the result is the global batch's mean loss.
            share = len(mine) * context.world_size / len(global_batch)
            loss = self.task.loss(pred, batch.y) * share
            local = [loss.item() / share * len(mine), float(len(mine))]
            step_loss, step_count = distributed.all_sum(local, context)
            if not math.isfinite(step_loss):
                self.diverged = {"epoch": self.epoch + 1, "step": step + 1, "loss": step_loss}
                return math.nan, {}
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
            self.optimizer.step()
            if self.step_per_batch:
                self.scheduler.step()
            total, count = total + step_loss, count + step_count
            ys.append(self.task.targets(batch.y).detach().cpu())
            preds.append(pred.detach().cpu())
            if self.task.node_level:
                roots.append(batch.root_mask.cpu())
            self._call("on_batch_end", step, total / count)
            yield
        parts = [torch.cat(ys), torch.cat(preds)] + ([torch.cat(roots)] if roots else [])
        return total / count, scores(self.spec, *distributed.all_gather(parts, context))

    def fit(self) -> dict:
        """Trains the remaining epochs and returns the run's summary."""
        self._call("on_fit_start")
        metric = self.metric
        while self.epoch < self.config.epochs:
            start = time.perf_counter()
            train_loss, train_scores = self.train_epoch()
            if self.diverged is not None:
                break
            seconds = time.perf_counter() - start
            record = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
                      "train_loss": train_loss}
            if not self.step_per_batch:  # before the checkpoint of this epoch saves its state
                self.scheduler.step()
            for split, values in (("train", train_scores), ("valid", self.evaluate("valid")),
                                  ("test", self.evaluate("test"))):
                record.update({f"{split}_{name}": value for name, value in values.items()})
            record["train_seconds"] = seconds
            self.history.append(record)
            self.epoch += 1
            if better(record[f"valid_{metric}"], self.best and self.best[f"valid_{metric}"],
                      self.spec.higher_is_better):
                self.best = {**record, "state": best_state(self.model)}
            self._call("on_epoch_end", record)
        summary = self.summary()
        self._call("on_fit_end", summary)
        return summary

    def mean_predictor(self, test: float | None) -> dict:
        """Regression: the test metric of always predicting the training mean, and the model's
        R^2 when the metric is the RMSE, so a score can be read against the trivial one."""
        if self.task.task_type != "regression" or self.task.node_level or not self.splits.test:
            return {}
        y = torch.cat([self.task.targets(data.y) for data in self.splits.test])
        mean = self.model.target_mean.cpu().expand_as(y)
        out = {"mean_predictor_test": scores(self.spec, y, mean)[self.metric]}
        if self.metric == "rmse" and test is not None:
            variance = torch.nanmean((y - torch.nanmean(y, 0)) ** 2).item()
            out["test_r2"] = 1 - test ** 2 / variance if variance > 0 else None
        return out

    def extrapolation(self) -> dict:
        """Datasets with an extrapolation set (APE: images twice the training size) score the
        best-validation model on it too (``extrapolation_<metric>``)."""
        if not hasattr(self.spec, "extrapolation") or self.best is None:
            return {}
        limit = {} if self.config.limit is None else {"num_samples": self.config.limit}
        dataset = self.spec.extrapolation(**limit)
        graphs = [dataset[i] for i in range(len(dataset))]
        trained = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.best["state"])
        values = self._scores(graphs)
        self.model.load_state_dict(trained)
        return {f"extrapolation_{name}": value for name, value in values.items()} | \
            {"extrapolation_graphs": len(graphs)}

    def summary(self) -> dict:
        metric, best = self.metric, self.best or {}
        seconds = [r["train_seconds"] for r in self.history]
        return {
            "dataset": self.config.dataset, "model": self.config.model, "metric": metric,
            "higher_is_better": self.spec.higher_is_better, "parameters": self.num_parameters,
            "status": "diverged" if self.diverged else "finished", "diverged": self.diverged,
            "epochs": self.epoch, "best_epoch": best.get("epoch"),
            "train": best.get(f"train_{metric}"), "valid": best.get(f"valid_{metric}"),
            "test": best.get(f"test_{metric}"),
            # The other selection rule (SPEC section 6: the paper's TU numbers are last-epoch ones).
            "test_last": self.history[-1][f"test_{metric}"] if self.history else None,
            **{f"{split}_{name}": best.get(f"{split}_{name}")
               for name in metric_names(self.spec)[1:] for split in ("valid", "test")},
            "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
            **self.mean_predictor(best.get(f"test_{metric}")),
            **self.extrapolation(),
            "num_graphs": {name: len(graphs) for name, graphs in self.splits},
            "world_size": self.context.world_size,
            # Where the run finished (config.json keeps the device of the latest command).
            "device": str(self.device),
        }
