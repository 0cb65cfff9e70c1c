"""The pLSTM operator on a :class:`~plstm_graph.LineGraph`, with interchangeable backends."""
from torch import Tensor

from ...graph.line_graph import LineGraph
from ...graph.validation import check_shape
from .levels import LevelsPLSTM, plstm_levels_edges
from .naive import direct_term, plstm_dense, plstm_reference
from .parallel import plstm_parallel

BACKENDS = ("auto", "reference", "levels", "parallel", "dense")

#: ``auto`` takes the parallel form while every graph of the batch has at most this many edges:
#: below it the per-graph solve beats the level sweep (``benchmarks/plstm_bench.py``), above it
#: the ``E^2`` blocks grow too large.
PARALLEL_MAX_EDGES = 256


def auto_backend(graph: LineGraph) -> str:
    largest = max((block.num_edges for block in graph.blocks), default=0)
    return "parallel" if largest <= PARALLEL_MAX_EDGES else "levels"


def plstm(q: Tensor, k: Tensor, v: Tensor, source: Tensor, transition: Tensor, mark: Tensor,
          direct: Tensor, graph: LineGraph, backend: str = "auto", recompute: bool = False) -> Tensor:
    r"""pLSTM on the line graph of a DAG (SPEC section 1), per head :math:`h`:

    .. math::
        C_e = S_e\, k_{src\,e} v_{src\,e}^\top + \sum_{e' \to e} T_{e' \to e}\, C_{e'}, \qquad
        h_n = \sum_{e:\, dst\,e = n} M_e\, C_e^\top q_n + D_n\, (q_n \cdot k_n)\, v_n

    No scaling is applied (layers scale ``q`` by :math:`K^{-1/2}`).

    Args:
        backend: ``"reference"`` (per-edge loop, the oracle), ``"levels"`` (level-batched with a
            custom backward), ``"parallel"`` (the gating-matrix form per graph, padded blocks of
            similar-size graphs), ``"dense"`` (the gating-matrix form over the whole batch,
            ``O(E^2)`` memory, for checks), or ``"auto"``: ``"parallel"`` for batches of small
            graphs (at most :data:`PARALLEL_MAX_EDGES` edges each), else ``"levels"``.
        recompute: ``levels`` only: recompute cell states in backward instead of storing them.

    Shapes:
        q, k ``[N, H, K]``; v ``[N, H, V]``; source, mark ``[E, H]``; transition ``[L, H]``;
        direct ``[N, H]``; output ``[N, H, V]``.
    """
    if not isinstance(graph, LineGraph):
        raise ValueError(f"graph must be a LineGraph (see prepare_dag), got {type(graph).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_shape(q, "q", (graph.num_nodes, None, None))
    heads, key_dim = q.shape[1:]
    check_shape(k, "k", (graph.num_nodes, heads, key_dim))
    check_shape(v, "v", (graph.num_nodes, heads, None))
    check_shape(source, "source", (graph.num_edges, heads))
    check_shape(transition, "transition", (graph.num_line_edges, heads))
    check_shape(mark, "mark", (graph.num_edges, heads))
    check_shape(direct, "direct", (graph.num_nodes, heads))

    if backend == "auto":
        backend = auto_backend(graph)
    if backend == "reference":
        return plstm_reference(q, k, v, source, transition, mark, direct, graph)
    if backend == "dense":
        return plstm_dense(q, k, v, source, transition, mark, direct, graph)
    if backend == "parallel":
        return plstm_parallel(q, k, v, source, transition, mark, direct, graph)
    edges = plstm_levels_edges(q, k, v, source, transition, mark, graph, recompute)
    return edges + direct_term(q, k, v, direct)


__all__ = ["BACKENDS", "LevelsPLSTM", "PARALLEL_MAX_EDGES", "auto_backend", "direct_term", "plstm",
           "plstm_dense", "plstm_parallel", "plstm_reference"]
