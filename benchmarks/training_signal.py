"""How much a model's predictions depend on its input in its first training steps.

    python benchmarks/training_signal.py --dataset ogbg-molhiv --data-root runs/data \
        --models plstm,gin --steps 1000 [--pooling sum] [--epochs 50]

A model that sits at the majority class (the training loss stays at the entropy of the class
prior, training ROC-AUC 0.5) predicts nearly the same logit for every graph. This prints, every
``--every`` steps of the training loop of ``plstm-graph train`` (same settings, from the
dataset's defaults unless given): the mean training loss, the median and largest gradient norm
before clipping, and the mean and standard deviation of the predictions (every output column) over those steps. A
spread that stays near 0 while the mean settles at the prior's logit is the collapse; a model
that learns keeps a spread of order 1. ``--epochs`` sets the length of the schedule (its
warm-up is 5 % of it), as in the run being diagnosed.
"""
import argparse
import statistics
import time

import torch

from plstm_graph.train import TrainConfig, Trainer
from plstm_graph.train.data import DataCache, make_splits
from plstm_graph.train.run import folds_of, prepared_graphs


class Recorder:
    """The loss, pre-clip gradient norm and predictions of every training step of ``trainer``."""

    def __init__(self, trainer: Trainer):
        self.losses, self.norms, self.preds = [], [], []
        loss, clip = trainer.task.loss, torch.nn.utils.clip_grad_norm_

        def recorded_loss(pred, y):
            value = loss(pred, y)
            self.losses.append(value.item())
            self.preds.append(pred.detach().view(-1))
            return value

        def recorded_clip(parameters, max_norm, *args, **kwargs):
            norm = clip(parameters, max_norm, *args, **kwargs)
            self.norms.append(float(norm))
            return norm

        trainer.task.loss = recorded_loss
        self._clip, self._recorded_clip = clip, recorded_clip

    def __enter__(self):
        torch.nn.utils.clip_grad_norm_ = self._recorded_clip
        return self

    def __exit__(self, *exc):
        torch.nn.utils.clip_grad_norm_ = self._clip

    def window(self, size: int) -> dict:
        preds = torch.cat(self.preds[-size:])
        norms = self.norms[-size:]
        return {"loss": statistics.fmean(self.losses[-size:]),
                "norm_median": statistics.median(norms), "norm_max": max(norms),
                "pred_mean": preds.mean().item(), "pred_std": preds.std().item()}


def steps(trainer: Trainer, count: int):
    """``count`` training steps, over as many epochs as they take."""
    done = 0
    while done < count:
        epoch = trainer.train_steps()
        for _ in epoch:
            done += 1
            yield done
            if done == count:
                return
        trainer.epoch += 1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ogbg-molhiv")
    parser.add_argument("--data-root")
    parser.add_argument("--models", default="plstm,gin")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100, help="steps per printed row")
    parser.add_argument("--epochs", type=int, help="schedule length (default: the dataset's)")
    parser.add_argument("--pooling", choices=("mean", "sum"))
    parser.add_argument("--lr", type=float)
    parser.add_argument("--limit", type=int, help="at most LIMIT graphs per split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.every < 1:
        parser.error(f"--steps ({args.steps}) and --every ({args.every}) must be positive")
    torch.set_num_threads(args.threads)

    cache = DataCache()
    spec = cache.dataset(args.dataset, args.data_root)
    print("| model | pooling | step | loss | grad norm, median | max | prediction mean | "
          "prediction std | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        config = TrainConfig(dataset=args.dataset, model=model, epochs=args.epochs,
                             pooling=args.pooling, lr=args.lr, limit=args.limit, seed=args.seed,
                             data_root=args.data_root)
        graphs = prepared_graphs(spec, config, cache)
        fold = folds_of(config, spec)[0]  # k-fold data: the first fold
        trainer = Trainer(config, spec, make_splits(spec, graphs, fold, config.limit))
        start = time.perf_counter()
        with Recorder(trainer) as record:
            for step in steps(trainer, args.steps):
                if step % args.every == 0 or step == args.steps:
                    row = record.window(min(args.every, step))
                    print(f"| {model} | {config.pooling} | {step} | {row['loss']:.4f} | "
                          f"{row['norm_median']:.3g} | {row['norm_max']:.3g} | "
                          f"{row['pred_mean']:.3f} | {row['pred_std']:.4f} | "
                          f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
