"""The pLSTM operator on batches that mix small and large graphs (PROTEINS), per backend.

Most PROTEINS graphs have a few dozen edges, but about 3 % have more than ``PARALLEL_MAX_EDGES``
(256), so most batches of 64 hold one: without the compiled sweep ``auto`` takes ``mixed`` for
them (``parallel`` on the small graphs, ``levels`` on the large ones), with it ``compiled``. Forward
+ backward of the operator on the first ``--batches`` training batches (shuffled with seed 0,
as the trainer's loader does), in P and D mode, each backend on the same inputs, rounds
interleaved; the ratios are printed from the summed median times.

    python benchmarks/mixed_bench.py [--batches 8] [--batch-size 64] [--width 64] [--heads 4]
"""
import argparse
import os
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader

import plstm_graph as pg
from plstm_graph.data.tu import load_tu
from plstm_graph.ops.plstm import auto_backend, compiled
from plstm_graph.testing import random_plstm_inputs
from plstm_bench import fwd_bwd, measure  # benchmarks/ (the script's folder is on sys.path)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BACKENDS = ("levels", "parallel", "mixed", *(("compiled",) if compiled.available() else ()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DATA)
    parser.add_argument("--dataset", default="PROTEINS")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = load_tu(args.dataset, args.data_root, download=False).dataset
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    head_dim = args.width // args.heads
    print(f"{args.dataset}, {args.batches} batches of {args.batch_size}, width {args.width}, "
          f"{args.heads} heads; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| batch | mode | edges | levels | auto picks | {' | '.join(f'{b} ms' for b in BACKENDS)} |")
    print(f"|---:|---|---:|---:|---|{'---:|' * len(BACKENDS)}")
    totals = dict.fromkeys(BACKENDS, 0.0)
    auto = 0.0
    for i, batch in zip(range(args.batches), loader):
        for mode in ("P", "D"):
            graph = pg.prepare_dag(batch.edge_index, batch.num_nodes, mode=mode)
            inputs = [x.float().requires_grad_() for x in
                      random_plstm_inputs(graph, args.heads, head_dim, head_dim)]
            rows = {backend: (fwd_bwd(lambda *xs, b=backend: pg.plstm(*xs, graph, backend=b),
                                      *inputs), args.repeats) for backend in BACKENDS}
            cpu = {name: result[1] for name, result in measure(rows, args.repeats).items()}
            for backend in BACKENDS:
                totals[backend] += cpu[backend]
            picked = auto_backend(graph)
            auto += cpu[picked]
            print(f"| {i} | {mode} | {graph.num_edges} | {graph.num_levels} | "
                  f"{picked} | {' | '.join(f'{cpu[b] * 1e3:.1f}' for b in BACKENDS)} |")
    print(f"\nsummed CPU time (median of {args.repeats} per batch and mode): "
          + ", ".join(f"{b} {totals[b]:.2f} s" for b in BACKENDS))
    print(f"auto's choices: {auto:.2f} s; " + ", ".join(
        f"{b} / auto {totals[b] / auto:.2f}x" for b in BACKENDS)
        + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
