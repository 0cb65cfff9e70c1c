"""Seconds per training epoch of several models on one dataset, same width and depth.

    python benchmarks/epoch_time.py --dataset ogbg-molbace --models plstm,gin [--rounds 2]

Each model trains one epoch over the whole training split (the training loop of
``plstm-graph train``: batches, encoders, blocks, loss, backward, clipping, AdamW). The models
take turns for ``--rounds`` rounds, so that a change of machine load hits each alike; each row
reports the fastest and the median of its epochs, in wall time and in the process's CPU time
(the steadier measure on a shared machine); with two models, their ratio also per round (two
epochs back to back), whose median is the least moved by a load that changes over minutes.
``--interleave`` goes further: within a round the models' training steps take turns (each
model's epoch is the sum of its own steps), so both see the same load, step by step. pLSTM's
line-graph preparation (PrepareDAG, done once per dataset) is timed separately and not counted
in its epoch. ``--profile STEPS`` prints the operators that dominate the first model's
training steps (``torch.profiler``).
"""
import argparse
import collections
import os
import statistics
import time

import torch

from plstm_graph.train import TrainConfig, Trainer
from plstm_graph.train.data import DataCache, make_splits
from plstm_graph.train.run import prepared_graphs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ogbg-molhiv")
    parser.add_argument("--data-root")
    parser.add_argument("--models", default="plstm,gin")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, help="at most LIMIT graphs per split (quick checks)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--interleave", action="store_true",
                        help="alternate the models' training steps within each round")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    cache = DataCache()
    start = time.perf_counter()
    spec = cache.dataset(args.dataset, args.data_root)
    print(f"{args.dataset}: {len(spec.dataset)} graphs loaded in {time.perf_counter() - start:.1f} s; "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    trainers, prepare = {}, {}
    for model in args.models.split(","):
        config = TrainConfig(dataset=args.dataset, model=model, epochs=args.rounds,
                             hidden=args.hidden, layers=args.layers, heads=args.heads,
                             batch_size=args.batch_size, limit=args.limit,
                             data_root=args.data_root)
        start = time.perf_counter()
        fold = 0 if spec.num_folds > 1 else None  # TU: the first of the paper's 10 folds
        splits = make_splits(spec, prepared_graphs(spec, config, cache), fold, args.limit)
        prepare[model] = time.perf_counter() - start
        trainers[model] = Trainer(config, spec, splits)

    if args.profile:
        profile_steps(next(iter(trainers.values())), args.profile)

    # Wall time, and the process's CPU time: on a shared machine the CPU time of this
    # single-threaded process is the steadier measure of the work (it leaves out the time
    # other processes held the core).
    seconds = {model: [] for model in trainers}
    cpu_seconds = {model: [] for model in trainers}
    for round_ in range(args.rounds):
        for model, (wall, cpu) in epoch_seconds(trainers, args.interleave).items():
            seconds[model].append(wall)
            cpu_seconds[model].append(cpu)
            print(f"round {round_ + 1}: {model} {wall:.1f} s ({cpu:.1f} s CPU)", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    print("\n| model | parameters | train graphs | s / epoch (fastest) | s / epoch (median) "
          "| CPU s / epoch (fastest) | preparation s (once) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for model, trainer in trainers.items():
        times = sorted(seconds[model])
        print(f"| {model} | {trainer.num_parameters:,} | {len(trainer.splits.train)} "
              f"| {times[0]:.2f} | {times[len(times) // 2]:.2f} | {min(cpu_seconds[model]):.2f} "
              f"| {prepare[model]:.1f} |")
    names = list(trainers)
    if len(names) == 2:
        for what, measured in (("wall", seconds), ("CPU", cpu_seconds)):
            first, second = (min(measured[name]) for name in names)
            # The two epochs of a round ran back to back, under about the same load: their
            # ratio is steadier than that of two fastest epochs measured minutes apart.
            rounds = sorted(a / b for a, b in zip(measured[names[0]], measured[names[1]]))
            print(f"ratio {names[0]} / {names[1]} ({what} time): fastest epochs {first / second:.2f}, "
                  f"median of the rounds {statistics.median(rounds):.2f} "
                  f"(rounds {rounds[0]:.2f} to {rounds[-1]:.2f})")


def epoch_seconds(trainers: dict, interleave: bool) -> dict:
    """Wall and CPU seconds of one training epoch of each model: one model's epoch after the
    other's, or (``interleave``) their steps taking turns, so that a load that changes during
    the epochs falls on every model alike."""
    steps = {model: trainer.train_steps() for model, trainer in trainers.items()}
    spent = {model: [0.0, 0.0] for model in trainers}
    while steps:
        for model in list(steps):
            wall, cpu = time.perf_counter(), time.process_time()
            if interleave:
                done = next(steps[model], _DONE) is _DONE  # one step (or the epoch's end)
            else:
                collections.deque(steps[model], maxlen=0)  # the whole epoch
                done = True
            spent[model][0] += time.perf_counter() - wall
            spent[model][1] += time.process_time() - cpu
            if done:
                del steps[model]
    return spent


_DONE = object()


def profile_steps(trainer: Trainer, steps: int) -> None:
    """Operators that take the most time in ``steps`` training steps of ``trainer``'s model."""
    from torch.profiler import profile

    limit = steps * trainer.config.batch_size
    trainer.splits.train, full = trainer.splits.train[:limit], trainer.splits.train
    with profile() as prof:
        trainer.train_epoch()
    trainer.splits.train = full
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), flush=True)


if __name__ == "__main__":
    main()
