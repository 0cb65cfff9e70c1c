"""pLSTM speed and memory on real molecules, measured side by side in one run.

1. Forward + backward of the pLSTM operator: the level-batched kernel against the per-edge
   reference loop (what the original implementation does), same inputs, same batch.
2. A ``PLSTMConv`` layer against torch_geometric's ``GINConv`` at equal width on that batch.

Molecules: the first ``--molecules`` SMILES of ogbg-molhiv's source CSV
(``../shared/data/moleculenet/hiv.csv.gz``), featurised with OGB's ``smiles2graph``.

    python benchmarks/plstm_bench.py [--molecules 128] [--width 64] [--heads 4] [--repeats 5]
"""
import argparse
import gzip
import time
from pathlib import Path

import torch
from torch_geometric.nn import GINConv

import plstm_graph as pg
from plstm_graph.data.molecule import smiles_to_graph
from plstm_graph.ops.plstm import auto_backend
from plstm_graph.testing import random_plstm_inputs
from memory import peak_bytes  # benchmarks/memory.py (the script's folder is on sys.path)

HIV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "moleculenet" / "hiv.csv.gz"


def molecule_batch(path: Path, count: int):
    """Disjoint union of the first ``count`` molecules: ``(edge_index, num_nodes)``."""
    with gzip.open(path, "rt") as lines:
        next(lines)
        smiles = [next(lines).split(",")[0] for _ in range(count)]
    parts, offset = [], 0
    for s in smiles:
        graph = smiles_to_graph(s)
        parts.append(torch.from_numpy(graph["edge_index"]).long() + offset)
        offset += int(graph["num_nodes"])
    return torch.cat(parts, dim=1), offset


def measure(fn, repeats: int) -> tuple[float, int]:
    """Median wall time of ``fn()`` and its peak tensor memory (that first call also warms up)."""
    peak = peak_bytes(fn)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], peak


def fwd_bwd(module_or_fn, *args):
    def run():
        out = module_or_fn(*args)
        out.backward(torch.ones_like(out))
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=HIV)
    parser.add_argument("--molecules", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 is steadier on a busy machine")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.csv.is_file():
        parser.error(f"--csv: {args.csv} not found (expected ../shared/data/moleculenet/hiv.csv.gz)")
    torch.manual_seed(0)

    edge_index, num_nodes = molecule_batch(args.csv, args.molecules)
    graph = pg.prepare_dag(edge_index, num_nodes, mode="P")
    print(f"{args.molecules} HIV molecules: {num_nodes} atoms, {graph.num_edges} DAG edges, "
          f"{graph.num_line_edges} line edges, {graph.num_levels} levels; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    head_dim = args.width // args.heads
    inputs = [x.float().requires_grad_() for x in
              random_plstm_inputs(graph, args.heads, head_dim, head_dim, dtype=torch.float64)]
    rows = []
    for backend in ("reference", "levels", "parallel"):
        run = fwd_bwd(lambda *xs, b=backend: pg.plstm(*xs, graph, backend=b), *inputs)
        # The reference loop takes seconds per call: time it once.
        rows.append((f"plstm op, {backend}", *measure(run, 1 if backend == "reference" else args.repeats)))
    rows.append(("plstm op, levels, recompute",
                 *measure(fwd_bwd(lambda *xs: pg.plstm(*xs, graph, backend="levels", recompute=True),
                                  *inputs), args.repeats)))

    x = torch.randn(num_nodes, args.width, requires_grad=True)
    plstm_conv = pg.PLSTMConv(args.width, args.width, heads=args.heads, mode="P")
    gin = GINConv(torch.nn.Sequential(torch.nn.Linear(args.width, args.width), torch.nn.ReLU(),
                                      torch.nn.Linear(args.width, args.width)))
    rows.append(("PLSTMConv (prepared graph)", *measure(fwd_bwd(plstm_conv, x, graph), args.repeats)))
    rows.append(("PLSTMConv (from edge_index)", *measure(fwd_bwd(plstm_conv, x, edge_index), args.repeats)))
    rows.append(("GINConv", *measure(fwd_bwd(gin, x, edge_index), args.repeats)))

    print(f"\nforward + backward, width {args.width}, {args.heads} heads (median of {args.repeats}; "
          "reference: 1 run)")
    print(f"| {'what':<28} | {'ms':>10} | {'peak MiB':>9} |")
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 11}|")
    for name, secs, peak in rows:
        print(f"| {name:<28} | {secs * 1e3:>10.1f} | {peak / 2**20:>9.1f} |")
    times = {name: secs for name, secs, _ in rows}
    print()
    for backend in ("levels", "parallel"):
        print(f"{backend} is {times['plstm op, reference'] / times[f'plstm op, {backend}']:.0f}x "
              f"faster than the per-edge reference")
    print(f"auto picks {auto_backend(graph)!r} for this batch (PLSTMConv below uses auto)")
    print(f"PLSTMConv / GINConv time: {times['PLSTMConv (prepared graph)'] / times['GINConv']:.1f}x "
          f"(prepared graph), {times['PLSTMConv (from edge_index)'] / times['GINConv']:.1f}x "
          f"(building the DAG in the call)")


if __name__ == "__main__":
    main()
