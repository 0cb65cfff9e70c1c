"""Accuracy against depth on the long-range look-up (``longrange-<kind>-<depth>``).

Trains each model on each depth with the same budget, side by side in one run, and prints a
table of test accuracy at the sink (at the epoch of best validation accuracy) with the time
per epoch; writes the rows as JSON and, with ``--plot``, a figure. Models are built with
:class:`~plstm_graph.nn.GraphModel` at its defaults for everything not given here; the
training loop is the plain one (AdamW, cross-entropy on the labelled sink of every graph).

    python benchmarks/long_range.py --kind dag --depths 2,4,8,16,32,64 \\
        --models plstm,dag-lstm,gin,gat --epochs 20 --out docs/long_range_dag.json \\
        --plot docs/figures/long_range_dag.png

A model whose receptive field at the sink is shorter than the depth stays at chance
(``1 / num_keys``, 0.5 by default).
"""
import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader

from plstm_graph.data.longrange import KINDS, VALUES, LongRangeDataset
from plstm_graph.nn import GraphModel, count_parameters


def accuracy(model, loader) -> float:
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for batch in loader:
            logits = model(batch)[batch.root_mask]
            hits += int((logits.argmax(-1) == batch.y[batch.root_mask]).sum())
            total += int(batch.root_mask.sum())
    return hits / total


def train_one(model_name: str, dataset: LongRangeDataset, args):
    """Train ``model_name`` on ``dataset``, yielding the row so far after every epoch: test
    accuracy at the best validation epoch, ``finished`` once training has stopped (so an
    interrupted run still leaves its last row)."""
    torch.manual_seed(args.seed)
    model = GraphModel(model_name, dataset.num_keys, features="onehot",
                       node_channels=dataset.num_node_features, hidden=args.hidden,
                       layers=args.layers, heads=args.heads, task_level="node",
                       orientation="given")
    transform = model.transform()
    graphs = [transform(g) if transform is not None else g for g in dataset]
    split = dataset.split()
    loaders = {name: DataLoader([graphs[i] for i in index], batch_size=args.batch_size,
                                shuffle=name == "train")
               for name, index in split.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    best = {"valid": -1.0}
    seconds = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        hits = total = 0
        for batch in loaders["train"]:
            logits = model(batch)[batch.root_mask]
            target = batch.y[batch.root_mask]
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            hits += int((logits.argmax(-1) == target).sum())
            total += len(target)
        seconds.append(time.perf_counter() - start)
        valid = accuracy(model, loaders["valid"])
        if valid > best["valid"]:
            # "train": accuracy on the epoch's batches as they were trained (no extra pass).
            best = {"valid": valid, "test": accuracy(model, loaders["test"]), "epoch": epoch,
                    "train": hits / total}
        if args.verbose:
            print(f"  {model_name} depth {dataset.depth} epoch {epoch}: loss {loss.item():.3f} "
                  f"valid {valid:.3f}", flush=True)
        done = valid == 1.0 or epoch == args.epochs  # at 1.0 nothing is left to select
        yield {"model": model_name, "depth": dataset.depth, "kind": dataset.kind,
               "parameters": count_parameters(model), "epochs": epoch,
               "seconds_per_epoch": sum(seconds) / len(seconds), "finished": done, **best}
        if done:
            return


def plot(rows: list, path: Path, kind: str, chance: float):
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in dict.fromkeys(row["model"] for row in rows):
        mine = sorted((row["depth"], row["test"]) for row in rows if row["model"] == name)
        ax.plot(*zip(*mine), marker="o", label=name)
    ax.axhline(chance, color="grey", linestyle=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth (DAG steps from the sources to the sink)")
    ax.set_ylabel("test accuracy at the sink")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"longrange-{kind}")
    ax.legend(fontsize=8, loc="lower left")  # the top is where pLSTM runs
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=KINDS, default="dag")
    parser.add_argument("--depths", default="2,4,8,16,32,64")
    parser.add_argument("--values", choices=VALUES, default="random",
                        help="the sources' values: independent, or a permutation (XOR-hard)")
    parser.add_argument("--num-keys", type=int, default=2)
    parser.add_argument("--models", default="plstm,dag-lstm,gin,gat")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sizes", default="2000,500,500", help="train,valid,test graphs")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON rows")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--rows", type=Path, nargs="+", default=None,
                        help="print the table (and --plot) from earlier --out files; no training")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.rows:
        rows = [row for path in args.rows for row in json.loads(path.read_text())]
        print(f"longrange-{args.kind}: test accuracy at the sink, from {len(args.rows)} file(s)")
    else:
        rows = train_all(args)
    print_table(rows)
    if args.plot:
        plot([row for row in rows if row["kind"] == args.kind], args.plot, args.kind,
             1 / args.num_keys)


def train_all(args) -> list:
    """Train every model at every depth; rows written to ``--out`` after each."""
    sizes = tuple(int(size) for size in args.sizes.split(","))
    rows = []
    for depth in (int(depth) for depth in args.depths.split(",")):
        dataset = LongRangeDataset(args.kind, depth, sizes=sizes, seed=args.seed,
                                   values=args.values, num_keys=args.num_keys)
        for name in args.models.split(","):
            rows.append(None)
            for row in train_one(name, dataset, args):
                rows[-1] = {**row, "values": args.values}
                if args.out:  # after every epoch: an interrupted run keeps its rows
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(rows, indent=1))
            print(f"{args.kind} depth {depth:>3} {name:>9}: test {row['test']:.3f} (valid "
                  f"{row['valid']:.3f}, train {row['train']:.3f}, epoch {row['epoch']}/"
                  f"{row['epochs']}), {row['seconds_per_epoch']:.1f} s/epoch", flush=True)
    print(f"\nlongrange-{args.kind} ({args.values} values): test accuracy at the sink (chance "
          f"{1 / args.num_keys:.2f}), {args.layers} layers, hidden {args.hidden}, <= {args.epochs} "
          f"epochs, {sizes[0]} training graphs, {args.threads} thread(s)")
    return rows


def cell(row: dict) -> str:
    """``test (best epoch / epochs run)``, marked when the run was stopped before it ended."""
    stopped = "" if row.get("finished", True) else ", stopped"
    return f"{row['test']:.3f} ({row['epoch']}/{row['epochs']}{stopped})"


def print_table(rows: list):
    """A markdown table: one row per (kind, depth), one column per model; test accuracy with
    the epoch it was selected at and the epochs run."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    table = {(row["model"], row["kind"], row["depth"]): row for row in rows}
    print("| kind | depth | " + " | ".join(models) + " |")
    print("|---|---:|" + "---:|" * len(models))
    for kind, depth in sorted({(row["kind"], row["depth"]) for row in rows}):
        cells = [cell(table[m, kind, depth]) if (m, kind, depth) in table else "" for m in models]
        print(f"| {kind} | {depth} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
