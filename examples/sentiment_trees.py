"""Sentiment of parse trees (Stanford Sentiment Treebank): a label at every node, read at the root.

    python examples/sentiment_trees.py --data-root ../shared/data
    python examples/sentiment_trees.py --dataset sst-binary --model dag-lstm --limit 0 --epochs 10
    python examples/sentiment_trees.py --limit 0 --epochs 10 --layers 8

Each sentence is its parse tree with edges from child to parent (``orientation="given"``):
words enter at the leaves as token ids, a learned embedding is part of the model, and every
constituent carries a sentiment (5 classes for ``sst``; ``sst-binary`` keeps negative /
positive and drops neutral sentences as the literature does). The model (``--model``: plstm,
dag-lstm, gin, attention, ...) outputs one row of logits per node and trains on every labelled
phrase; it is scored by root accuracy (the whole sentence) and by accuracy over all nodes.

Training goes through the library's trainer (``run_training`` with a ``TrainConfig``: AdamW,
warm-up and cosine decay, the checkpoint of best validation root accuracy in a run folder);
the script then loads that checkpoint and prints a few test sentences with their predicted and
true root sentiment.

Default (reduced) budget: the first 1000 sentences of each split (``--limit``; 0 for the full
8544 / 1101 / 2210), 3 epochs, hidden 64, 2 blocks: 15 s of CPU time for pLSTM on one thread
(measured 2 Dec 2026 beside two other runs). That shows the workflow, not a model: test root
accuracy 0.393 on those 1000 sentences (0.434 with ``--arrangement alternate``; one seed on a
small subset ranks nothing). The full training split and more epochs are what the README's
results on DAGs and trees measure.

``--arrangement`` (pLSTM and the DAG-LSTM) sets how layers take the tree's two directions:
``forward`` runs every layer from the leaves to the root, as a phrase's label depends on its
subtree only; ``alternate`` runs every second layer from the root to the leaves, where the root
has no predecessor and receives nothing; ``paired`` (pLSTM only) stacks a P-mode and a D-mode
layer on the tree before any layer on its reverse. Left unset, the model takes the dataset's
default: ``forward`` for pLSTM on both SST sets, chosen on validation at the full budget
(README, DAGs and trees, round 19), ``alternate`` for the DAG-LSTM.
"""
import argparse
import tempfile

import torch
from torch_geometric.data import Batch

from plstm_graph.data import get_dataset
from plstm_graph.nn.mixers import ARRANGEMENTS
from plstm_graph.train import TrainConfig, build_model, run_training
from plstm_graph.train.checkpoint import load_checkpoint

LABELS = {"sst": ("very negative", "negative", "neutral", "positive", "very positive"),
          "sst-binary": ("negative", "positive")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--dataset", default="sst", choices=sorted(LABELS))
    parser.add_argument("--model", default="plstm")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=1000,
                        help="first sentences of each split (0: the full splits)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--arrangement", choices=sorted(ARRANGEMENTS),
                        help="the layers' arrangement, pLSTM and DAG-LSTM (default: the dataset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=5, help="test sentences printed")
    parser.add_argument("--out", help="run folder (default: a new temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small trees: one thread is fastest on shared CPUs
    try:  # the library names a model without the option, or an arrangement it lacks
        config = TrainConfig(dataset=args.dataset, model=args.model, epochs=args.epochs,
                             hidden=args.hidden, layers=args.layers, limit=args.limit or None,
                             seed=args.seed, data_root=args.data_root,
                             model_options=None if args.arrangement is None
                             else {"arrangement": args.arrangement})
    except ValueError as error:
        parser.error(str(error))

    sst = get_dataset(args.dataset, root=args.data_root)
    run_dir = args.out or tempfile.mkdtemp(prefix="sentiment-trees-")
    summary = run_training(config, run_dir, spec=sst, progress=False)
    print(f"{args.model} on {args.dataset} ({summary['num_graphs']['train']} training "
          f"sentences), best validation epoch {summary['best_epoch']}: test root accuracy "
          f"{summary['test']:.3f}, all-node accuracy {summary['test_acc_all_nodes']:.3f} "
          f"(run folder {run_dir})")

    # The best checkpoint, read back as a user would, on a few test sentences.
    model = build_model(config, sst)
    model.load_state_dict(load_checkpoint(f"{run_dir}/best.pt")["model"])
    model.eval()
    index = sst.split()["test"][:args.show].tolist()
    batch = Batch.from_data_list([sst.dataset[i] for i in index])
    with torch.no_grad():
        predicted = model(batch)[batch.root_mask].argmax(1)
    names = LABELS[args.dataset]
    for i, guess, true in zip(index, predicted.tolist(), batch.y[batch.root_mask].tolist()):
        print(f"  [{names[guess]} / true: {names[true]}] {sst.dataset.sentences[i]}")


if __name__ == "__main__":
    main()
