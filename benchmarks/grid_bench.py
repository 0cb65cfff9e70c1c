"""The grid backend against the DAG kernels on 2D grids, measured side by side in one run.

Forward + backward of the pLSTM operator on ``--count`` equal grids (a batch of images) of
each ``--sizes`` side, P-mode and D-mode, same inputs for every backend; the repeats take the
backends in turn, so a change in machine load hits them alike. Prints the median wall time,
the median CPU time of this process (steadier than wall time on a shared machine: it leaves out
the time other processes hold the core; the ratios use it), the peak memory
(``benchmarks/memory.py``) and the speed ratio ``levels / backend`` for the two grid backends
(``grid``: the diagonal sweep; ``grid-chunk``: the chunkwise form). The ``parallel``
backend solves one ``E x E`` triangular system per grid and head (``E = 2 n (n - 1)`` edges):
it runs only where that stays under ``--parallel-max-edges`` edges.

    python benchmarks/grid_bench.py [--sizes 32 64] [--count 8 2] [--heads 4] [--key-dim 16]
                                    [--value-dim 16] [--repeats 5] [--threads 1]
"""
import argparse
import time

import torch

import plstm_graph as pg
from plstm_graph.graph.grid import grid_line_graph
from plstm_graph.ops.plstm import compiled
from plstm_graph.testing import random_plstm_inputs
from memory import peak_bytes  # benchmarks/memory.py (the script's folder is on sys.path)


def fwd_bwd(graph, backend, inputs):
    def run():
        out = pg.plstm(*inputs, graph, backend=backend)
        out.backward(torch.ones_like(out))
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--count", type=int, nargs="+", default=[8, 2],
                        help="grids per batch, one per size (or one for all)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--key-dim", type=int, default=16)
    parser.add_argument("--value-dim", type=int, default=16)
    parser.add_argument("--modes", nargs="+", default=["P", "D"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parallel-max-edges", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 is steadier when busy")
    args = parser.parse_args(argv)
    if len(args.count) not in (1, len(args.sizes)):
        parser.error("--count: give one value, or one per --sizes entry")
    if args.threads:
        torch.set_num_threads(args.threads)
    counts = args.count * len(args.sizes) if len(args.count) == 1 else args.count
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
          f"heads {args.heads}, K {args.key_dim}, V {args.value_dim}, median of {args.repeats}")
    print(f"{'grids':>12} {'mode':>4} {'backend':>10} {'wall ms':>9} {'CPU ms':>9} "
          f"{'peak MB':>8} {'levels/this':>12}")
    for size, count in zip(args.sizes, counts):
        for mode in args.modes:
            graph = grid_line_graph(size, size, "top-left", mode, count)
            generator = torch.Generator().manual_seed(0)
            inputs = [x.float().requires_grad_() for x in random_plstm_inputs(
                graph, args.heads, args.key_dim, args.value_dim, generator=generator)]
            backends = ["grid", "grid-chunk", "levels"]
            if compiled.available():
                backends.append("compiled")
            if graph.num_edges // count <= args.parallel_max_edges:
                backends.append("parallel")
            runs = {name: fwd_bwd(graph, name, inputs) for name in backends}
            peaks = {name: peak_bytes(run) for name, run in runs.items()}  # also warms up
            wall, cpu = {name: [] for name in backends}, {name: [] for name in backends}
            for _ in range(args.repeats):
                for name, run in runs.items():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    run()
                    cpu[name].append(time.process_time() - start_cpu)
                    wall[name].append(time.perf_counter() - start)
            wall, cpu = ({name: sorted(t)[len(t) // 2] for name, t in times.items()}
                         for times in (wall, cpu))
            for name in backends:
                ratio = f"{cpu['levels'] / cpu[name]:.2f}x" if name != "levels" else ""
                print(f"{f'{count} x {size}x{size}':>12} {mode:>4} {name:>10} "
                      f"{wall[name] * 1e3:>9.1f} {cpu[name] * 1e3:>9.1f} "
                      f"{peaks[name] / 2**20:>8.1f} {ratio:>12}")
            if "parallel" not in backends:
                print(f"{'':>12} {mode:>4} {'parallel':>10} skipped: {graph.num_edges // count} "
                      f"edges per grid > --parallel-max-edges {args.parallel_max_edges}")


if __name__ == "__main__":
    main()
