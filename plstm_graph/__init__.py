"""pLSTM on DAGs for PyTorch Geometric. The names below are fixed by ``SPEC.md``."""
from .graph import DAGData, LineGraph, PrepareDAG, line_graph_of, prepare_dag
from .nn import PLSTMBlock, PLSTMConv
from .ops import plstm
from .ops.attention import einsum_attention

__version__ = "0.1.0"
