"""pLSTM on DAGs for PyTorch Geometric. The names below are fixed by ``SPEC.md``.

They are imported on first use (PEP 562), so ``import plstm_graph`` and the command line's
``--help`` do not pay for torch_geometric, rdkit and ogb until something needs them.
"""
import importlib

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "DAGData": ".graph", "LineGraph": ".graph", "PrepareDAG": ".graph", "line_graph_of": ".graph",
    "prepare_dag": ".graph", "grid_line_graph": ".graph", "chain_line_graph": ".graph",
    "GridLineGraph": ".graph", "PLSTMBlock": ".nn", "PLSTMConv": ".nn", "plstm": ".ops",
    "einsum_attention": ".ops.attention",
}
_SUBPACKAGES = ("cli", "data", "graph", "nn", "ops", "testing", "train")

__all__ = [*_EXPORTS, *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted({*globals(), *__all__})
