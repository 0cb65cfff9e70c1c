"""Arrow-pointing extrapolation at CPU scale: train a 2D pLSTM or a ViT on ``ape-64`` images and
test it at 64 px and on 128 px images (objects keep their size, so distances double).

    python examples/arrow_pointing.py --model plstm-2d --seed 0 --steps 300 --out run.json
    python examples/arrow_pointing.py --samples docs/figures/ape_samples.png
    python examples/arrow_pointing.py --summarize 'runs/*.json' --figure docs/figures/ape_results.png

The protocol follows the paper's (AdamW, weight decay 0.05 on weights only, linear warm-up then
cosine decay, gradient clipping 1.0, no augmentation, the final model is tested), shrunk to a
CPU budget. Prints one JSON line with the accuracies, the parameter count and the time taken.
With ``--checkpoint PATH`` a long run saves its state at every validation point
(``--eval-every``) and after the last step, and the same command resumes it from there: the
data order is a function of the seed and the epoch, so a resumed run takes the same steps as one
that was never stopped.
"""
import argparse
import glob
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader

from plstm_graph.cli.train import model_options
from plstm_graph.data.ape import SCENE_LABELS, APEConfig, generate, load_ape, relabel
from plstm_graph.nn import plstm_2d, vit  # noqa: F401  (registers plstm-2d, plstm-2d-d, vit)
from plstm_graph.nn.models import POOLINGS, GraphModel, count_parameters
from plstm_graph.train.checkpoint import load_checkpoint, save_checkpoint


def accuracy(model, dataset, batch_size: int) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size):
            correct += int((model(batch).argmax(-1) == batch.y).sum())
    return correct / len(dataset)


def optimizer_for(model, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices only (not biases, norms, embeddings' scales)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr)


#: Arguments a checkpoint must agree with to be resumed (the others only change reporting).
RESUME_KEYS = ("label", "model", "size", "downsample", "patch", "seed", "num_train", "steps",
               "warmup", "batch_size", "lr", "hidden", "layers", "heads", "position_embedding",
               "model_option", "pooling")
#: What checkpoints written before an argument existed imply for it.
IMPLIED = {"model_option": [], "label": "hit", "pooling": None}


def batches_from(train, step: int, batch_size: int, seed: int):
    """The training batches from ``step`` to the end of its epoch, in an order that depends only
    on ``seed`` and the epoch (so a resumed run sees what an uninterrupted one would)."""
    per_epoch = len(train) // batch_size
    epoch, offset = divmod(step, per_epoch)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    order = order[offset * batch_size:per_epoch * batch_size]
    return DataLoader(train[order], batch_size=batch_size)


def new_progress() -> dict:
    """A run's progress before its first step (what a checkpoint saves besides the weights)."""
    return {"step": 0, "losses": [], "curve": [], "cpu_seconds": 0.0, "seconds": 0.0}


def resume(path, args, model, optimizer, schedule) -> dict:
    """The saved progress (:func:`new_progress`) of the run at ``path``, with the model,
    optimiser and schedule restored; a fresh start when there is none yet."""
    try:
        state = load_checkpoint(path)
    except FileNotFoundError:
        return new_progress()
    saved = {**IMPLIED, **state["args"]}
    if saved["pooling"] is None:
        # Written before the pooling that ran was recorded: None meant the model's default of
        # that time (mean until round 11, max since), which the checkpoint cannot tell.
        if not args.pooling_given:
            raise SystemExit(f"--checkpoint {path} does not record its pooling (it ran the "
                             f"model's default of its time: mean before round 11, max since); "
                             f"pass --pooling as it ran")
        saved["pooling"] = args.pooling
    changed = {key: (saved[key], getattr(args, key)) for key in RESUME_KEYS
               if saved[key] != getattr(args, key)}
    if changed:
        raise SystemExit(f"--checkpoint {path} was written with other settings "
                         f"({', '.join(f'{k}: {a!r} there, {b!r} now' for k, (a, b) in changed.items())}); "
                         f"pass those, or another --checkpoint path")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    print(f"resumed {path} at step {state['progress']['step']}", flush=True)
    return state["progress"]


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def plot_samples(path: str, per_class: int = 2):
    """Hits and misses at 64 px and at the 128 px extrapolation size, each with its ray."""
    import matplotlib.pyplot as plt

    sizes = (64, 128)
    fig, axes = plt.subplots(len(sizes), 2 * per_class, figsize=(2.2 * 2 * per_class, 2.4 * len(sizes)))
    for row, size in zip(axes, sizes):
        config = APEConfig(size=size)
        images, labels, scenes = generate(config, seed=200042, num_samples=20)
        hits, misses = labels.nonzero().view(-1), (labels == 0).nonzero().view(-1)
        picks = hits[:per_class].tolist() + misses[:per_class].tolist()
        for ax, i in zip(row, picks):
            scene, scale = scenes[i], config.downsample
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255, extent=(0, size, size, 0))
            reach = 2 * size * scale
            ax.plot([scene.arrow_x / scale, (scene.arrow_x + reach * math.cos(scene.angle)) / scale],
                    [scene.arrow_y / scale, (scene.arrow_y + reach * math.sin(scene.angle)) / scale],
                    ls=":", lw=0.8, color="tab:red")
            ticks = range(0, size + 1, config.patch)
            ax.set_xticks(ticks, minor=True)
            ax.set_yticks(ticks, minor=True)
            ax.grid(which="minor", lw=0.2, color="0.8")
            ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.set_title(f"{size} px: {'hit' if labels[i] else 'miss'}", fontsize=9)
    fig.suptitle("APE samples (test seeds; dotted: the arrow's ray; grid: 8 px patches)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def variant(run: dict) -> tuple:
    """What tells runs of one model apart in the tables and figures: the position embedding
    (results written before it was recorded say "?")."""
    return run["model"], run.get("position_embedding", "?")


def plot_curves(runs: list, path: str):
    """Validation accuracy at the training size and at 2x against the step, one line per run
    (the runs' ``curve``, written with ``--eval-every``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    colours = {}
    for run in runs:
        if not run["curve"]:
            continue
        first = variant(run) not in colours  # one legend entry per variant, a line per seed
        colour = colours.setdefault(variant(run), f"C{len(colours)}")
        steps = [point["step"] for point in run["curve"]]
        for ax, key in zip(axes, ("valid_acc", "valid_acc_2x")):
            ax.plot(steps, [point[key] for point in run["curve"]], color=colour, lw=1.2,
                    label=", ".join(variant(run)) if first else None)
    for ax, title in zip(axes, (f"validation, {runs[0]['size']} px", f"validation, {2 * runs[0]['size']} px")):
        ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"step (batch {runs[0]['batch_size']})")
    axes[0].set_ylabel("accuracy")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summarize(patterns: list, figure: str | None = None, curves: str | None = None) -> str:
    """A markdown table (mean +- std over seeds) of the JSON results matching any of
    ``patterns`` (globs)."""
    paths = sorted({path for pattern in patterns for path in glob.glob(pattern)})
    if not paths:
        raise SystemExit(f"--summarize {' '.join(patterns)!r} matches no file")
    runs = [json.loads(open(path).read()) for path in paths]
    if curves:
        plot_curves(runs, curves)
    runs = [run for run in runs if "test_acc" in run]  # --valid-only runs have curves only
    if not runs:
        return "(no run with test scores: they were all --valid-only)"
    by_variant = {}
    for run in runs:
        by_variant.setdefault(variant(run), []).append(run)
    ext_key = next(key for key in runs[0] if key.startswith("extrapolation_acc_"))
    size, ext_size = runs[0]["size"], ext_key.rsplit("_", 1)[1]
    lines = [f"| model | position embedding | parameters | seeds | steps x batch | test acc ({size} px) "
             f"| extrapolation acc ({ext_size} px) | train CPU s / run |",
             "|---|---|---|---|---|---|---|---|"]
    for (model, position), group in by_variant.items():
        def stat(key):
            values = [run[key] for run in group]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.3f} ± {spread:.3f}"
        cpu = statistics.mean(run["train_cpu_seconds"] for run in group)
        lines.append(f"| {model} | {position} | {group[0]['parameters']:,} | {len(group)} | "
                     f"{group[0]['steps']} x {group[0]['batch_size']} | {stat('test_acc')} | "
                     f"{stat(ext_key)} | {cpu:.0f} |")
    if figure:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.3))
        panels = (("test_acc", f"test {size} px"), (ext_key, f"extrapolation {ext_size} px"))
        for offset, (key, label) in enumerate(panels):
            for i, group in enumerate(by_variant.values()):
                values = [run[key] for run in group]
                x = i + 0.2 * (2 * offset - 1)
                ax.bar(x, statistics.mean(values), width=0.38, color=f"C{offset}",
                       label=label if i == 0 else None, alpha=0.7)
                ax.scatter([x] * len(values), values, color="k", s=8, zorder=3)
        ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
        ax.set_xticks(range(len(by_variant)), ["\n".join(key) for key in by_variant], fontsize=8)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0.4, 1.0)
        ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
        fig.tight_layout()
        fig.savefig(figure, dpi=110)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="plstm-2d")
    parser.add_argument("--label", default="hit", choices=tuple(SCENE_LABELS),
                        help="what to predict: hit (the task) or a diagnostic part of it, "
                        "circle-right (is the circle right of the arrow: positions only) or "
                        "points-right (does the arrow point right: its drawing only)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--downsample", type=int, default=3, help="scene drawn at size * "
                        "downsample px and box-filtered down (3: the paper's 192 px scene at 64 px)")
    parser.add_argument("--patch", type=int, default=8, help="patch side in px")
    parser.add_argument("--seed", type=int, default=0, help="model and data-order seed; training "
                        "images come from seed 42 + seed")
    parser.add_argument("--num-train", type=int, default=8000)
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--num-valid", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=0, help="score the validation sets "
                        "(training size and 2x) every this many steps (0: never)")
    parser.add_argument("--valid-only", action="store_true", help="score the final model on the "
                        "validation sets only (for choosing settings; the test sets stay unseen)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--pooling", default=None, choices=tuple(POOLINGS),
                        help="pooling over the patches (default: the model's, max)")
    parser.add_argument("--position-embedding", default=None,
                        help="learned-sincos, learned, sincos or none (default: the model's)")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the model, as in `plstm-graph train` (repeatable), "
                        "e.g. projections=official or corner_pooling=false for the pLSTMs")
    parser.add_argument("--out", default=None, help="also write the JSON result here")
    parser.add_argument("--checkpoint", default=None, help="save the run's state here at every "
                        "validation point and at the end; resume from it when it exists")
    parser.add_argument("--samples", default=None, help="only draw sample images to this file")
    parser.add_argument("--summarize", nargs="+", metavar="GLOB",
                        help="only tabulate the JSON results these globs match")
    parser.add_argument("--figure", default=None, help="with --summarize: plot them to this file")
    parser.add_argument("--curves", default=None, help="with --summarize: plot their validation "
                        "curves (--eval-every) to this file")
    args = parser.parse_args(argv)
    if args.samples:
        return plot_samples(args.samples)
    if args.summarize:
        return print(summarize(args.summarize, args.figure, args.curves))
    if args.num_train < args.batch_size:
        parser.error(f"--num-train ({args.num_train}) must be at least --batch-size ({args.batch_size})")

    torch.manual_seed(args.seed)
    bench = load_ape(args.size, seed=42 + args.seed, num_train=args.num_train, num_valid=args.num_valid,
                     num_test=args.num_test, num_extrapolation=args.num_test,
                     downsample=args.downsample, patch=args.patch)
    relabel(bench.dataset, args.label)
    split = bench.split()
    train, valid = bench.dataset[split["train"]], bench.dataset[split["valid"]]
    valid_2x = relabel(bench.extrapolation(split="valid", num_samples=args.num_valid), args.label)

    given_options = model_options(args)
    options = {"grid": bench.config.grid, **given_options}
    if args.position_embedding is not None:
        options["position_embedding"] = args.position_embedding
    model = GraphModel(args.model, 2, features="onehot", node_channels=bench.num_node_features,
                       hidden=args.hidden, layers=args.layers, heads=args.heads, orientation="given",
                       pooling=args.pooling, model_options=options)
    # What ran, for resuming and the JSON (old checkpoints recorded the pooling as given).
    args.position_embedding = model.spec.position_embedding
    args.pooling_given, args.pooling = args.pooling is not None, model.pooling
    optimizer = optimizer_for(model, args.lr, 0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, args.warmup, args.steps))

    progress = (resume(args.checkpoint, args, model, optimizer, schedule) if args.checkpoint
                else new_progress())
    step, losses, curve = progress["step"], progress["losses"], progress["curve"]
    start = time.perf_counter() - progress["seconds"]
    cpu_start = time.process_time() - progress["cpu_seconds"]

    def save():
        progress.update(step=step, losses=losses[-50:], cpu_seconds=time.process_time() - cpu_start,
                        seconds=time.perf_counter() - start)
        save_checkpoint({"args": vars(args), "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                         "progress": progress}, args.checkpoint)

    model.train()
    while step < args.steps:
        for batch in batches_from(train, step, args.batch_size, args.seed):
            loss = F.cross_entropy(model(batch), batch.y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if args.eval_every and step % args.eval_every == 0:
                curve.append({"step": step, "train_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
                              "valid_acc": accuracy(model, valid, 64),
                              "valid_acc_2x": accuracy(model, valid_2x, 64),
                              "cpu_seconds": round(time.process_time() - cpu_start, 1)})
                print(json.dumps(curve[-1]), flush=True)
                model.train()
                if args.checkpoint:
                    save()
            if step == args.steps:
                break
    if args.checkpoint:
        save()
    train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    result = {
        "label": args.label, "model": args.model, "seed": args.seed, "size": args.size,
        "downsample": args.downsample, "patch": args.patch, "steps": args.steps,
        "batch_size": args.batch_size, "lr": args.lr,
        "images_seen": args.steps * args.batch_size, "hidden": args.hidden, "layers": args.layers,
        "heads": args.heads, "position_embedding": args.position_embedding,
        "model_options": given_options, "pooling": model.pooling,
        "parameters": count_parameters(model),
        "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu, 1),
        "final_train_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "valid_acc": accuracy(model, valid, 64), "valid_acc_2x": accuracy(model, valid_2x, 64),
        "curve": curve, "threads": torch.get_num_threads(),
    }
    if not args.valid_only:
        test, extrapolation = bench.dataset[split["test"]], relabel(bench.extrapolation(), args.label)
        result["test_acc"] = accuracy(model, test, 64)
        result[f"extrapolation_acc_{extrapolation.config.size}"] = accuracy(model, extrapolation, 64)
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "w") as file:
            file.write(line + "\n")
    return result


if __name__ == "__main__":
    main()
