"""Seconds per training epoch of several models on one dataset, same width and depth.

    python benchmarks/epoch_time.py --dataset ogbg-molhiv --data-root runs/data --models plstm,gin

Each model trains one epoch over the whole training split (batch 64, AdamW, the training
loop of ``plstm-graph train``). pLSTM's line-graph preparation (PrepareDAG, done once per
dataset) is timed separately and not counted in its epoch. Prints only what it measured.
"""
import argparse
import tempfile
import time

import torch

from plstm_graph.train import TrainConfig, Trainer
from plstm_graph.train.data import make_splits
from plstm_graph.train.run import load_dataset, prepared_graphs


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
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    spec = load_dataset(args.dataset, args.data_root)
    print(f"{args.dataset}: {len(spec.dataset)} graphs loaded in {time.perf_counter() - start:.1f} s; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    rows = []
    for model in args.models.split(","):
        config = TrainConfig(dataset=args.dataset, model=model, epochs=1, hidden=args.hidden,
                             layers=args.layers, heads=args.heads, batch_size=args.batch_size,
                             limit=args.limit)
        start = time.perf_counter()
        splits = make_splits(spec, prepared_graphs(spec, model), None, args.limit)
        prepare = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as run_dir:
            trainer = Trainer(config, spec, splits, run_dir, progress=False)
            start = time.perf_counter()
            loss, _ = trainer.train_epoch(None)
            seconds = time.perf_counter() - start
        rows.append((model, trainer.num_parameters, len(splits.train), prepare, seconds, loss))
        print(f"{model}: {seconds:.1f} s for one epoch over {len(splits.train)} graphs "
              f"({trainer.num_parameters:,} parameters; data preparation {prepare:.1f} s, "
              f"not counted)", flush=True)
    print("\n| model | parameters | train graphs | s / epoch | preparation s (once) |")
    print("|---|---:|---:|---:|---:|")
    for model, params, graphs, prepare, seconds, _ in rows:
        print(f"| {model} | {params:,} | {graphs} | {seconds:.1f} | {prepare:.1f} |")
    if len(rows) == 2:
        print(f"\nratio {rows[0][0]} / {rows[1][0]}: {rows[0][4] / rows[1][4]:.2f}")


if __name__ == "__main__":
    main()
