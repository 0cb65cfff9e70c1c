"""DAG-LSTM speed: the level-batched sweep against the per-node loop, measured side by side.

Forward + backward of the Child-Sum DAG-LSTM operator (``plstm_graph.ops.dag_rnn.dag_lstm``),
same inputs, same graph, for

1. a batch of real molecules: the first ``--molecules`` SMILES of ogbg-molhiv's source CSV
   (``../shared/data/moleculenet/hiv.csv.gz``), oriented by node index as the models do;
2. a ``--chain``-node chain, the worst case for level batching (one node per level).

The node schedule is built once per graph (as a model builds it once per batch); its build
time is printed beside the sweeps.

    python benchmarks/dag_lstm_bench.py [--molecules 128] [--chain 10000] [--width 64] [--repeats 5]
"""
import argparse
import time
from pathlib import Path

import torch

from plstm_graph.graph.node_levels import node_schedule, prepare_node_schedule
from plstm_graph.ops.dag_rnn import dag_lstm
from plstm_graph.testing import chain
from plstm_bench import HIV, molecule_batch  # benchmarks/plstm_bench.py (same folder)


def seconds(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def fwd_bwd(schedule, width: int, backend: str, attention: bool):
    gen = torch.Generator().manual_seed(0)
    n = schedule.num_nodes
    inputs = [torch.randn(n, 4, width, generator=gen),
              torch.randn(3 * width, width, generator=gen) / width ** 0.5,
              torch.randn(width, width, generator=gen) / width ** 0.5,
              torch.randn(width, generator=gen) if attention else None]
    inputs = [x if x is None else x.requires_grad_() for x in inputs]

    def run():
        out = dag_lstm(*inputs[:3], schedule, inputs[3], backend=backend)
        out.backward(torch.ones_like(out))
    return run


def compare(name: str, schedule, width: int, repeats: int, attention: bool) -> float:
    reference = seconds(fwd_bwd(schedule, width, "reference", attention), 1)
    levels_run = fwd_bwd(schedule, width, "levels", attention)
    levels_run()  # warm-up
    levels = seconds(levels_run, repeats)
    print(f"| {name:<34} | {reference * 1e3:>12.0f} | {levels * 1e3:>9.1f} | "
          f"{reference / levels:>6.1f}x |")
    return reference / levels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=HIV)
    parser.add_argument("--molecules", type=int, default=128)
    parser.add_argument("--chain", type=int, default=10000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="levels runs (reference: 1 run)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        parser.error(f"--csv: {args.csv} not found (expected ../shared/data/moleculenet/hiv.csv.gz)")
    torch.set_num_threads(args.threads)

    edge_index, num_nodes = molecule_batch(args.csv, args.molecules)
    start = time.perf_counter()
    molecules = prepare_node_schedule(edge_index, num_nodes)
    molecules_build = time.perf_counter() - start
    start = time.perf_counter()
    long_chain = node_schedule(*chain(args.chain))
    chain_build = time.perf_counter() - start
    print(f"{args.molecules} HIV molecules: {molecules!r} (schedule built in "
          f"{molecules_build * 1e3:.0f} ms)")
    print(f"chain: {long_chain!r} (schedule built in {chain_build * 1e3:.0f} ms)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), width {args.width}; "
          f"forward + backward, levels: median of {args.repeats} (chain: 1 run) after a warm-up, "
          f"reference: 1 run\n")
    print(f"| {'graph':<34} | {'per-node ms':>12} | {'levels ms':>9} | {'ratio':>7} |")
    print(f"|{'-' * 36}|{'-' * 14}|{'-' * 11}|{'-' * 9}|")
    for attention in (False, True):
        suffix = ", attention" if attention else ""
        compare(f"{args.molecules} HIV molecules{suffix}", molecules, args.width, args.repeats,
                attention)
    compare(f"{args.chain}-node chain", long_chain, args.width, 1, False)
    print("\nratio = per-node loop time / level-batched time")


if __name__ == "__main__":
    main()
