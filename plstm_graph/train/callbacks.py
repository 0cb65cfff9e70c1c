"""What a training run does besides training, as callbacks: progress bars, the run folder
(checkpoints, ``metrics.jsonl``, ``summary.json``) and the learning-curve figure.

A :class:`Callback` sees the :class:`~plstm_graph.train.Trainer` at fixed points of its loop;
the trainer itself only trains and evaluates.
"""
import copy
from pathlib import Path

from tqdm.auto import tqdm

from .checkpoint import json_line, load_checkpoint, save_checkpoint, write_json, write_text

LAST, BEST, METRICS, SUMMARY, CURVE = ("last.pt", "best.pt", "metrics.jsonl", "summary.json",
                                      "learning_curve.png")


class Callback:
    """Hooks of :meth:`Trainer.fit`, in the order they run; each gets the trainer."""

    def on_fit_start(self, trainer) -> None: ...
    def on_epoch_start(self, trainer, epoch: int, steps: int) -> None: ...
    def on_batch_end(self, trainer, step: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer, record: dict) -> None: ...
    def on_fit_end(self, trainer, summary: dict) -> None: ...


class ProgressBar(Callback):
    """tqdm bars: one over epochs, one over the batches of the current epoch."""

    def __init__(self, desc: str):
        self.desc, self.epochs, self.batches = desc, None, None

    def on_fit_start(self, trainer):
        config = trainer.config
        self.epochs = tqdm(total=config.epochs, initial=trainer.epoch, desc=self.desc,
                           unit="epoch", dynamic_ncols=True)
        resumed = f"; resuming after epoch {trainer.epoch}" if trainer.epoch else ""
        self.epochs.write(f"{self.desc}: {trainer.num_parameters:,} parameters{resumed}")

    def on_epoch_start(self, trainer, epoch, steps):
        self.batches = tqdm(total=steps, desc=f"epoch {epoch + 1}", leave=False, unit="batch",
                            dynamic_ncols=True)

    def on_batch_end(self, trainer, step, loss):
        self.batches.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self.batches.update()

    def on_epoch_end(self, trainer, record):
        self.batches.close()
        metric = trainer.metric
        self.epochs.set_postfix({"loss": f"{record['train_loss']:.4f}",
                                 f"valid_{metric}": f"{record[f'valid_{metric}']:.4f}",
                                 f"test_{metric}": f"{record[f'test_{metric}']:.4f}"})
        self.epochs.update()

    def on_fit_end(self, trainer, summary):
        if self.batches is not None:
            self.batches.close()
        self.epochs.close()


class RunFolder(Callback):
    """Keeps ``run_dir`` up to date and resumable. After every epoch it writes, in this order:
    ``best.pt`` (when validation improved), ``last.pt`` (the trainer's whole state) and a
    ``metrics.jsonl`` line; at the end ``summary.json``. Every file is written atomically, so a
    run stopped at any point resumes from its last finished epoch and ends exactly as an
    uninterrupted run would. On start it loads ``last.pt`` when there is one (``metrics.jsonl``
    is rewritten from its history: an epoch logged after the last checkpoint is dropped)."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)

    def on_fit_start(self, trainer):
        path = self.run_dir / LAST
        if path.exists():
            # On the CPU: the RNG states must stay CPU tensors; weights and optimizer state
            # move to the parameters' device as they load.
            trainer.load_state_dict(load_checkpoint(path))
        if trainer.context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text("".join(json_line(row) for row in trainer.history), self.run_dir / METRICS)

    def on_epoch_end(self, trainer, record):
        if not trainer.context.is_main:
            return
        if trainer.best is not None and trainer.best["epoch"] == record["epoch"]:
            save_checkpoint({"model": trainer.best["state"], "epoch": record["epoch"],
                             "config": trainer.config.to_dict()}, self.run_dir / BEST)
        save_checkpoint(trainer.state_dict(), self.run_dir / LAST)
        with open(self.run_dir / METRICS, "a") as handle:
            handle.write(json_line(record))

    def on_fit_end(self, trainer, summary):
        if trainer.context.is_main:
            write_json(summary, self.run_dir / SUMMARY)


class LearningCurve(Callback):
    """``learning_curve.png``: training loss and the train / valid / test metric per epoch."""

    def __init__(self, path, title: str = ""):
        self.path, self.title = Path(path), title

    def on_fit_end(self, trainer, summary):
        if trainer.context.is_main and trainer.history:
            from .plots import plot_learning_curve
            plot_learning_curve(trainer.history, trainer.metric, self.path, title=self.title)


class EpochHook(Callback):
    """Calls ``function(epoch, record)`` after each epoch is saved (0-based ``epoch``)."""

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, trainer, record):
        self.function(record["epoch"] - 1, record)


def best_state(model) -> dict:
    """A copy of the model's weights, detached from further training."""
    return copy.deepcopy(model.state_dict())
