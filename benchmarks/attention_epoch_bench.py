"""Training-epoch time of the attention baseline against GIN, side by side in one run.

    python benchmarks/attention_epoch_bench.py --dataset ogbg-molbace --data-root runs/data

Both models train on the same training split with the loop of ``plstm-graph train`` (batch
64, AdamW, gradient clipping), at the same width, depth and heads. The epochs alternate,
attention then GIN, ``--rounds`` times, so that a change in the machine's load hits both
models alike; the table gives every round's ratio and the medians, in wall-clock seconds
and in CPU seconds of this process (``time.process_time``: with one thread, the time it
computed, not the time it waited for a core on a shared machine).
"""
import argparse
import os
import statistics
import time

import torch

from plstm_graph.train import TrainConfig, Trainer
from plstm_graph.train.data import DataCache, make_splits
from plstm_graph.train.run import prepared_graphs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ogbg-molbace")
    parser.add_argument("--data-root")
    parser.add_argument("--models", default="attention,gin",
                        help="two models: the ratio is first / second")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = args.models.split(",")
    if len(models) != 2:
        parser.error("--models takes two names")

    cache = DataCache()
    spec = cache.dataset(args.dataset, args.data_root)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dataset}, "
          f"hidden {args.hidden}, layers {args.layers}, heads {args.heads}, batch "
          f"{args.batch_size}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    trainers = {}
    for model in models:
        config = TrainConfig(dataset=args.dataset, model=model, epochs=args.rounds,
                             hidden=args.hidden, layers=args.layers, heads=args.heads,
                             batch_size=args.batch_size)
        splits = make_splits(spec, prepared_graphs(spec, config, cache))
        trainers[model] = Trainer(config, spec, splits)
    wall, cpu = ({model: [] for model in models} for _ in range(2))
    for round_ in range(args.rounds):
        for model in models:
            start, start_cpu = time.perf_counter(), time.process_time()
            trainers[model].train_epoch()
            wall[model].append(time.perf_counter() - start)
            cpu[model].append(time.process_time() - start_cpu)
        print(f"  round {round_ + 1}: " + ", ".join(
            f"{m} {wall[m][-1]:.2f} s" for m in models), flush=True)

    first, second = models
    print(f"\n| round | {first} s | {second} s | ratio | {first} CPU s | {second} CPU s | "
          f"CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [(str(i + 1), wall[first][i], wall[second][i], cpu[first][i], cpu[second][i])
            for i in range(args.rounds)]
    for name, a, b, ca, cb in rows:
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f} | {ca:.2f} | {cb:.2f} | {ca / cb:.2f} |")
    median = statistics.median
    print(f"| median | {median(wall[first]):.2f} | {median(wall[second]):.2f} | "
          f"{median(a / b for _, a, b, _, _ in rows):.2f} | {median(cpu[first]):.2f} | "
          f"{median(cpu[second]):.2f} | {median(ca / cb for *_, ca, cb in rows):.2f} |")
    print(f"\nparameters: " + ", ".join(f"{m} {trainers[m].num_parameters:,}" for m in models)
          + f"; train graphs {len(trainers[first].splits.train)}; "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
