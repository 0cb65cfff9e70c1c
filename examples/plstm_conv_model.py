"""A minimal PyG model built directly from PLSTMConv, trained on MUTAG.

    python examples/plstm_conv_model.py --data-root ../shared/data

Two pLSTM layers (a P-mode layer on the DAG, then a D-mode layer on its reverse) between a
linear encoder and a mean-pooled linear head. PrepareDAG stores both line graphs on every
graph once, so the training loop only batches them. The full model with encoders, residual
blocks and baselines is plstm_graph.nn.GraphModel (see `plstm-graph train`).
"""
import argparse

import torch
import torch.nn.functional as F
from torch_geometric.loader import DataLoader
from torch_geometric.nn import global_mean_pool

import plstm_graph as pg
from plstm_graph.data import get_dataset


class TinyPLSTM(torch.nn.Module):
    def __init__(self, in_channels: int, hidden: int, num_classes: int):
        super().__init__()
        self.encoder = torch.nn.Linear(in_channels, hidden)
        self.conv1 = pg.PLSTMConv(hidden, hidden, heads=4, mode="P")
        self.conv2 = pg.PLSTMConv(hidden, hidden, heads=4, mode="D")
        self.head = torch.nn.Linear(hidden, num_classes)

    def forward(self, data):
        x = self.encoder(data.x)
        # One LineGraph object per (mode, direction) and batch; layers share it.
        x = x + self.conv1(F.gelu(x), pg.line_graph_of(data, mode="P"))
        x = x + self.conv2(F.gelu(x), pg.line_graph_of(data, mode="D", reverse=True))
        return self.head(global_mean_pool(x, data.batch))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    spec = get_dataset("MUTAG", root=args.data_root)
    graphs = [pg.PrepareDAG()(data) for data in spec.dataset]  # line graphs, once
    split = spec.split(fold=0)
    train = DataLoader([graphs[i] for i in split["train"]], batch_size=32, shuffle=True)
    test = DataLoader([graphs[i] for i in split["test"]], batch_size=64)

    model = TinyPLSTM(spec.num_node_features, 32, spec.num_tasks)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch in train:
            loss = F.cross_entropy(model(batch), batch.y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch % 5 == 0:
            model.eval()
            with torch.no_grad():
                logits = torch.cat([model(batch) for batch in test])
                labels = torch.cat([batch.y for batch in test])
            print(f"epoch {epoch:3d}  loss {loss.item():.3f}  "
                  f"test accuracy {spec.evaluate(labels, logits):.3f}")


if __name__ == "__main__":
    main()
