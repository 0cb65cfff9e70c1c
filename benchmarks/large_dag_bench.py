"""pLSTM on DAGs of about 1,000,000 edges: preparation, forward and backward time, peak memory.

Graphs (``orientation="given"``, P-mode):

* ``grid``: a 700 x 700 grid, edges pointing right and down (978,600 edges, 1,397 levels);
* ``random``: 500,000 nodes, each with two edges to nodes 1..1000 ahead (about 1,000,000 edges,
  a depth in the thousands).

Preparation is :func:`~plstm_graph.prepare_dag` (levels, line graph), and for the 100,000-node
chain of issue 12 also the D-mode pruning. Forward + backward run the ``levels`` kernel, and
the ``grid`` backend on the grid when it exists. Peak memory is the CPU allocator's high-water
mark during the call (``benchmarks/memory.py``).

    python benchmarks/large_dag_bench.py [--heads 1] [--dim 8] [--threads 1]
"""
import argparse
import os
import time

import torch

import plstm_graph as pg
from plstm_graph.ops.plstm import BACKENDS, compiled
from plstm_graph.testing import chain, grid_dag, random_plstm_inputs
from memory import peak_bytes  # benchmarks/memory.py (the script's folder is on sys.path)


def random_deep_dag(num_nodes: int, reach: int, seed: int = 0):
    """Every node points to two nodes 1..``reach`` ahead (edges past the end are dropped)."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.arange(num_nodes).repeat_interleave(2)
    dst = src + torch.randint(1, reach + 1, src.shape, generator=generator)
    keep = dst < num_nodes
    return torch.stack([src[keep], dst[keep]]), num_nodes


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def fwd_bwd(graph, backend, heads, dim):
    inputs = [x.float().requires_grad_() for x in random_plstm_inputs(
        graph, heads, dim, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))]

    def forward():
        return pg.plstm(*inputs, graph, backend=backend)

    def both():
        out = forward()
        out.backward(torch.ones_like(out))

    with torch.no_grad():
        _, forward_s = timed(forward)
    _, both_s = timed(both)
    return forward_s, both_s - forward_s, peak_bytes(both)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--dim", type=int, default=8, help="key and value size per head")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--graphs", default="chain,grid,random",
                        help="which of chain (preparation only), grid, random to run")
    args = parser.parse_args(argv)
    graphs = args.graphs.split(",")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.heads} heads, "
          f"K = V = {args.dim}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    for mode in ("P", "D") if "chain" in graphs else ():
        _, seconds = timed(lambda: pg.prepare_dag(*chain(100_000), mode=mode, orientation="given"))
        print(f"100,000-node chain, {mode}-mode preparation: {seconds:.2f} s")

    cases = {"grid": ("grid 700x700", lambda: grid_dag(700, 700)),
             "random": ("random deep", lambda: random_deep_dag(500_000, 1000))}
    if not set(graphs) & set(cases):
        return
    print("\n| graph | edges | line edges | levels | preparation s | backend | forward s | "
          "backward s | peak MiB (fwd + bwd) |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for name, make in (cases[key] for key in graphs if key in cases):
        edge_index, num_nodes = make()
        graph, prepare_s = timed(lambda: pg.prepare_dag(edge_index, num_nodes, mode="P",
                                                        orientation="given"))
        runs = [("levels", graph)]
        if compiled.available():
            runs.append(("compiled", graph))
        if name.startswith("grid") and "grid" in BACKENDS:
            from plstm_graph.graph.grid import grid_line_graph

            runs.append(("grid", grid_line_graph(700, 700, mode="P")))
        for backend, g in runs:
            forward_s, backward_s, peak = fwd_bwd(g, backend, args.heads, args.dim)
            print(f"| {name} | {graph.num_edges:,} | {graph.num_line_edges:,} | {graph.num_levels:,} "
                  f"| {prepare_s:.1f} | {backend} | {forward_s:.1f} | {backward_s:.1f} "
                  f"| {peak / 2**20:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
