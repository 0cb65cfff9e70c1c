"""How much each block's mixing layer and MLP add to the residual stream at initialisation.

    python benchmarks/branch_scale.py --dataset NCI1 --data-root ../shared/data \
        --models plstm,gat [--model-option projections=official]

Every block adds ``mix(RMSNorm x)`` and then ``MLP(RMSNorm x)`` to ``x``. For the first
training batch of a dataset, with each model as ``plstm-graph train`` builds it (the dataset's
defaults unless given), this prints per block the rms of ``x``, of the mixer's branch and of
the MLP's, and for a pLSTM layer the rms of its per-head state ``h`` before the per-head
RMSNorm, in units of that norm's :math:`\\sqrt{\\varepsilon}`: well below 1 the norm scales
``h`` by about :math:`1 / \\sqrt{\\varepsilon}` instead of normalising it.
"""
import argparse
from contextlib import contextmanager

import torch
from torch_geometric.data import Batch

import plstm_graph.nn.plstm_conv as plstm_conv
from plstm_graph.cli.train import model_options
from plstm_graph.train import TrainConfig
from plstm_graph.train.data import DataCache, make_splits
from plstm_graph.train.run import folds_of, prepared_graphs
from plstm_graph.train.trainer import build_model


def rms(x: torch.Tensor) -> float:
    return x.detach().pow(2).mean().sqrt().item()


@contextmanager
def recorded_states(states: list):
    """``(rms of h, sqrt(eps))`` of every per-head RMSNorm of a pLSTM layer, in call order."""
    norm = plstm_conv.rms_norm

    def recorded(h, weight, eps):
        states.append((rms(h), eps ** 0.5))
        return norm(h, weight, eps=eps)

    plstm_conv.rms_norm = recorded
    try:
        yield states
    finally:
        plstm_conv.rms_norm = norm


def block_scales(model, batch) -> list[dict]:
    """Per block: rms of its input, of the mixer's and the MLP's branch, and of pLSTM's ``h``
    over :math:`\\sqrt{\\varepsilon}` (``None`` for other layers)."""
    rows, handles = [], []
    for block in model.blocks:
        row = {"layer": repr(block.mixer).split("(")[0], "state": None}
        rows.append(row)
        handles += [
            block.register_forward_pre_hook(lambda m, args, row=row: row.update(x=rms(args[0]))),
            block.mixer.register_forward_hook(
                lambda m, args, out, row=row: row.update(mixer=rms(out))),
            block.mlp.register_forward_hook(lambda m, args, out, row=row: row.update(mlp=rms(out)))]
    try:
        with torch.no_grad(), recorded_states([]) as states:
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    # A pLSTM block's layer is its mixer, or a part of it (a LocalGlobalMixer's).
    plstm_rows = [row for block, row in zip(model.blocks, rows)
                  if isinstance(getattr(block, "conv", block.mixer), plstm_conv.PLSTMConv)]
    for row, (state, floor) in zip(plstm_rows, states):
        row["state"] = state / floor
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="NCI1")
    parser.add_argument("--data-root")
    parser.add_argument("--models", default="plstm,gin")
    parser.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                        help="as plstm-graph train's (for every model listed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    options = model_options(args) or None
    torch.set_num_threads(1)

    cache = DataCache()
    spec = cache.dataset(args.dataset, args.data_root)
    print("| model | block | layer | x rms | mixer branch rms | MLP branch rms | "
          "pLSTM h rms / sqrt(eps) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        torch.manual_seed(args.seed)
        config = TrainConfig(dataset=args.dataset, model=name, seed=args.seed,
                             data_root=args.data_root, model_options=options)
        graphs = prepared_graphs(spec, config, cache)
        splits = make_splits(spec, graphs, folds_of(config, spec)[0])
        size = min(config.batch_size, len(splits.train))
        batch = Batch.from_data_list([splits.train[i] for i in range(size)])
        model = build_model(config, spec).eval()
        for index, row in enumerate(block_scales(model, batch)):
            state = "-" if row["state"] is None else f"{row['state']:.3g}"
            print(f"| {name} | {index} | {row['layer']} | {row['x']:.3g} | {row['mixer']:.3g} | "
                  f"{row['mlp']:.3g} | {state} |", flush=True)


if __name__ == "__main__":
    main()
