"""``prepare_dag``: from a PyG ``edge_index`` to the :class:`LineGraph` pLSTM runs on."""
from torch import Tensor

from .line_graph import LineGraph, build_line_graph
from .orientation import ORIENTATIONS, check_acyclic, orient
from .validation import check_edge_index, check_num_nodes


def orient_dag(edge_index: Tensor, num_nodes: int, orientation: str = "index"):
    """Validated, oriented DAG edges: ``(dag_edge_index, edge_id, depth)`` where ``depth`` is
    every node's longest-path depth (``ValueError`` naming a node on a cycle, if any)."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    num_nodes = check_num_nodes(num_nodes)
    edge_index = check_edge_index(edge_index, num_nodes)
    dag_edge_index, edge_id = orient(edge_index, num_nodes, orientation)
    return dag_edge_index, edge_id, check_acyclic(dag_edge_index, num_nodes)


def prepare_dag(edge_index: Tensor, num_nodes: int, mode: str = "P",
                orientation: str = "index", reverse: bool = False) -> LineGraph:
    """Orient ``edge_index`` into a DAG and build its line graph and edge levels.

    Works on one graph or on a whole PyG batch (a disjoint union) at once.

    Args:
        edge_index: ``[2, E_in]`` integer tensor of node pairs.
        num_nodes: number of nodes ``N``.
        mode: ``"P"`` keeps the full line graph; ``"D"`` prunes it to a multitree.
        orientation: ``"index"`` (undirected input: lower -> higher node index, self-loops
            dropped, duplicates merged) or ``"given"`` (a directed acyclic input, kept as is;
            a cycle raises ``ValueError`` naming a node on it).
        reverse: return the line graph of the reversed DAG (same as ``.reverse()`` on the
            result, without building the forward one first).
    """
    dag_edge_index, edge_id, depth = orient_dag(edge_index, num_nodes, orientation)
    if reverse:
        return build_line_graph(dag_edge_index.flip(0), edge_id, int(num_nodes), mode)
    return build_line_graph(dag_edge_index, edge_id, int(num_nodes), mode, depth=depth)
