"""The pLSTM operator on a :class:`~plstm_graph.LineGraph`, with interchangeable backends."""
from torch import Tensor

from ...graph.line_graph import LineGraph
from ...graph.validation import check_shape
from .levels import LevelsPLSTM, plstm_levels_edges
from .naive import direct_term, plstm_dense, plstm_reference

BACKENDS = ("auto", "reference", "levels", "dense")


def plstm(q: Tensor, k: Tensor, v: Tensor, source: Tensor, transition: Tensor, mark: Tensor,
          direct: Tensor, graph: LineGraph, backend: str = "auto", recompute: bool = False) -> Tensor:
    r"""pLSTM on the line graph of a DAG (SPEC section 1), per head :math:`h`:

    .. math::
        C_e = S_e\, k_{src\,e} v_{src\,e}^\top + \sum_{e' \to e} T_{e' \to e}\, C_{e'}, \qquad
        h_n = \sum_{e:\, dst\,e = n} M_e\, C_e^\top q_n + D_n\, (q_n \cdot k_n)\, v_n

    No scaling is applied (layers scale ``q`` by :math:`K^{-1/2}`).

    Args:
        backend: ``"reference"`` (per-edge loop, the oracle), ``"levels"`` (level-batched with a
            custom backward), ``"dense"`` (the gating-matrix form, ``O(E^2)`` memory, for checks),
            or ``"auto"``, which picks ``"levels"``: the fastest correct backend at every size.
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

    if backend == "reference":
        return plstm_reference(q, k, v, source, transition, mark, direct, graph)
    if backend == "dense":
        return plstm_dense(q, k, v, source, transition, mark, direct, graph)
    edges = plstm_levels_edges(q, k, v, source, transition, mark, graph, recompute)
    return edges + direct_term(q, k, v, direct)


__all__ = ["BACKENDS", "LevelsPLSTM", "direct_term", "plstm", "plstm_dense", "plstm_reference"]
