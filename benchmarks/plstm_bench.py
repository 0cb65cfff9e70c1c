"""pLSTM speed and memory on real molecules, measured side by side in one run.

1. Forward + backward of the pLSTM operator: each backend against the per-edge reference loop
   (what the original implementation does), same inputs, same batch.
2. A ``PLSTMConv`` layer against torch_geometric's ``GINConv`` at equal width on that batch.

Molecules: the first ``--molecules`` SMILES of ogbg-molhiv's source CSV
(``../shared/data/moleculenet/hiv.csv.gz``), featurised with OGB's ``smiles2graph``.

    python benchmarks/plstm_bench.py [--molecules 128] [--width 64] [--heads 4] [--repeats 5]

Each row is timed twice per round: one call right after the other rows' (data of other
operators in the caches, as inside a model), and calls back to back (the steady state).
"""
import argparse
import gzip
import os
import time
from pathlib import Path

import torch
from torch_geometric.nn import GINConv

import plstm_graph as pg
from plstm_graph.data.molecule import smiles_to_graph
from plstm_graph.ops.plstm import auto_backend, compiled
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


def measure(rows: dict, repeats: int, back_to_back: float = 0.0) -> dict:
    """``name -> (median wall seconds, median CPU seconds, peak bytes[, median CPU seconds per
    call back to back])`` of each ``name -> (fn, runs)``, the rounds interleaved so that a
    change of machine load hits every row alike (the first call of each also measures peak
    memory and warms up). The CPU time is this process's (one thread): on a shared machine it
    leaves out the time other processes held the core.

    A round times one call of each row, right after the other rows' calls (caches hold their
    data, as in a model where other layers run in between). With ``back_to_back`` seconds,
    each round then also runs the row's calls back to back for about that long (the count set
    on the first call) and takes the mean per call: the steady-state cost, as
    ``torch.utils.benchmark.Timer`` measures it."""
    peaks = {name: peak_bytes(fn) for name, (fn, _) in rows.items()}
    counts = {name: _calls_lasting(fn, back_to_back) for name, (fn, _) in rows.items()
              if back_to_back}
    times = {name: ([], [], []) for name in rows}
    for round_ in range(repeats):
        for name, (fn, runs) in rows.items():
            if round_ < runs:
                start, cpu_start = time.perf_counter(), time.process_time()
                fn()
                times[name][0].append(time.perf_counter() - start)
                times[name][1].append(time.process_time() - cpu_start)
                if back_to_back:
                    cpu_start = time.process_time()
                    for _ in range(counts[name]):
                        fn()
                    times[name][2].append((time.process_time() - cpu_start) / counts[name])
    return {name: (_median(wall), _median(cpu), peaks[name],
                   *((_median(warm),) if back_to_back else ()))
            for name, (wall, cpu, warm) in times.items()}


def _calls_lasting(fn, seconds: float) -> int:
    """How many calls of ``fn`` take about ``seconds`` of CPU (at least 1), from one call."""
    start = time.process_time()
    fn()
    return max(1, round(seconds / max(time.process_time() - start, 1e-6)))


def _median(values: list) -> float:
    return sorted(values)[len(values) // 2]


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
    parser.add_argument("--back-to-back", type=float, default=0.05, metavar="SECONDS",
                        help="per round, also run each row back to back for about this long and "
                             "report the mean per call (default 0.05; the reference's single call "
                             "is longer, so it runs once)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 is steadier on a busy machine")
    args = parser.parse_args(argv)
    if args.back_to_back <= 0:
        parser.error(f"--back-to-back must be positive, got {args.back_to_back}")
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

    def op(backend, recompute=False):
        return fwd_bwd(lambda *xs: pg.plstm(*xs, graph, backend=backend, recompute=recompute),
                       *inputs)

    x = torch.randn(num_nodes, args.width, requires_grad=True)
    plstm_conv = pg.PLSTMConv(args.width, args.width, heads=args.heads, mode="P")
    gin = GINConv(torch.nn.Sequential(torch.nn.Linear(args.width, args.width), torch.nn.ReLU(),
                                      torch.nn.Linear(args.width, args.width)))
    # The reference loop takes seconds per call: it runs 3 times (its time moves by 2x between
    # single runs on a shared machine, and every ratio below divides by it).
    reference_runs = min(3, args.repeats)
    rows = {
        "plstm op, reference": (op("reference"), reference_runs),
        "plstm op, levels": (op("levels"), args.repeats),
        "plstm op, levels, recompute": (op("levels", True), args.repeats),
        "plstm op, parallel": (op("parallel"), args.repeats),
        "plstm op, parallel, recompute": (op("parallel", True), args.repeats),
        **({"plstm op, compiled": (op("compiled"), args.repeats)} if compiled.available() else {}),
        "plstm op, auto": (op("auto"), args.repeats),
        "PLSTMConv (prepared graph)": (fwd_bwd(plstm_conv, x, graph), args.repeats),
        "PLSTMConv (from edge_index)": (fwd_bwd(plstm_conv, x, edge_index), args.repeats),
        "GINConv": (fwd_bwd(gin, x, edge_index), args.repeats),
    }
    results = measure(rows, args.repeats, back_to_back=args.back_to_back)

    print(f"\nforward + backward, width {args.width}, {args.heads} heads (median of {args.repeats}, "
          f"rounds interleaved; reference: median of {reference_runs}); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"| {'what':<29} | {'ms':>10} | {'CPU ms':>10} | {'CPU ms, back to back':>20} | {'peak MiB':>9} |")
    print(f"|{'-' * 31}|{'-' * 12}|{'-' * 12}|{'-' * 22}|{'-' * 11}|")
    for name, (secs, cpu, peak, warm) in results.items():
        print(f"| {name:<29} | {secs * 1e3:>10.1f} | {cpu * 1e3:>10.1f} | {warm * 1e3:>20.1f} "
              f"| {peak / 2**20:>9.1f} |")
    print()
    for column, what in ((0, "wall"), (1, "CPU"), (3, "CPU, back to back")):
        times = {name: result[column] for name, result in results.items()}
        reference = times["plstm op, reference"]
        ratios = ", ".join(f"{backend} {reference / times[f'plstm op, {backend}']:.0f}x"
                           for backend in ("levels", "parallel", "compiled", "auto")
                           if f"plstm op, {backend}" in times)
        print(f"{what} time: faster than the per-edge reference: {ratios}")
        print(f"{what} time: PLSTMConv / GINConv "
              f"{times['PLSTMConv (prepared graph)'] / times['GINConv']:.1f}x (prepared graph), "
              f"{times['PLSTMConv (from edge_index)'] / times['GINConv']:.1f}x (building the DAG "
              f"in the call)")
    print(f"auto picks {auto_backend(graph)!r} for this batch (PLSTMConv above uses auto)")
    if not compiled.available():
        print(f"compiled sweep not measured: {compiled.unavailable()}")

if __name__ == "__main__":
    main()
