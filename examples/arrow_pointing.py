"""Arrow-pointing extrapolation at CPU scale: train a 2D pLSTM or a ViT on ``ape-64`` images and
test it at 64 px and on 128 px images (objects keep their size, so distances double).

    python examples/arrow_pointing.py --model plstm-2d --seed 0 --steps 600 --out run.json

The protocol follows the paper's (AdamW, weight decay 0.05 on weights only, linear warm-up then
cosine decay, gradient clipping 1.0, no augmentation, the final model is tested), shrunk to a
CPU budget. Prints one JSON line with the accuracies, the parameter count and the time taken.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader

from plstm_graph.data.ape import load_ape
from plstm_graph.nn import plstm_2d, vit  # noqa: F401  (registers plstm-2d, plstm-2d-d, vit)
from plstm_graph.nn.models import GraphModel, count_parameters


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


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="plstm-2d")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="model and data-order seed; training "
                        "images come from seed 42 + seed")
    parser.add_argument("--num-train", type=int, default=8000)
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--out", default=None, help="also write the JSON result here")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    bench = load_ape(args.size, seed=42 + args.seed, num_train=args.num_train, num_valid=args.num_test,
                     num_test=args.num_test, num_extrapolation=args.num_test)
    split = bench.split()
    train, test = bench.dataset[split["train"]], bench.dataset[split["test"]]
    extrapolation = bench.extrapolation()

    model = GraphModel(args.model, 2, features="onehot", node_channels=bench.num_node_features,
                       hidden=args.hidden, layers=args.layers, heads=args.heads, orientation="given")
    optimizer = optimizer_for(model, args.lr, 0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, args.warmup, args.steps))

    start, step, losses = time.perf_counter(), 0, []
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True)
    model.train()
    while step < args.steps:
        for batch in loader:
            loss = F.cross_entropy(model(batch), batch.y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if step == args.steps:
                break
    train_seconds = time.perf_counter() - start

    result = {
        "model": args.model, "seed": args.seed, "size": args.size, "steps": args.steps,
        "batch_size": args.batch_size, "images_seen": args.steps * args.batch_size,
        "hidden": args.hidden, "layers": args.layers, "heads": args.heads,
        "parameters": count_parameters(model), "train_seconds": round(train_seconds, 1),
        "final_train_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "test_acc": accuracy(model, test, 64),
        f"extrapolation_acc_{extrapolation.config.size}": accuracy(model, extrapolation, 64),
        "threads": torch.get_num_threads(),
    }
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "w") as file:
            file.write(line + "\n")
    return result


if __name__ == "__main__":
    main()
