"""Turning an ``edge_index`` into the edges of a DAG.

* ``"index"``: for undirected graphs stored in both directions (PyG's convention). Each
  undirected edge is kept once, pointing from the lower to the higher node index, at the
  position of its first occurrence; self-loops are dropped and duplicates merged.
* ``"given"``: the edges are taken as they are and must form a DAG.

Both return ``(dag_edge_index [2, E], edge_id [E])`` where ``edge_id`` is the input column each
DAG edge came from, so that edge features can follow their edge.
"""
import torch
from torch import Tensor

from .topology import longest_path_depth, node_on_cycle

ORIENTATIONS = ("index", "given")


def orient_by_index(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    src, dst = edge_index
    columns = (src != dst).nonzero().view(-1)
    low = torch.minimum(src, dst)[columns]
    high = torch.maximum(src, dst)[columns]
    _, group = torch.unique(low * num_nodes + high, return_inverse=True)
    first = torch.full((int(group.max()) + 1 if group.numel() else 0,), edge_index.size(1),
                       dtype=torch.long, device=edge_index.device)
    first = first.scatter_reduce(0, group, columns, reduce="amin")
    edge_id = first.sort().values  # keep the input order of first occurrences
    return torch.stack([torch.minimum(src, dst)[edge_id], torch.maximum(src, dst)[edge_id]]), edge_id


def check_acyclic(edge_index: Tensor, num_nodes: int, name: str = "edge_index") -> Tensor:
    """Return the longest-path depth of every node; ``ValueError`` naming a node on a cycle."""
    depth, done = longest_path_depth(edge_index, num_nodes)
    if not bool(done.all()):
        node = node_on_cycle(edge_index, done)
        raise ValueError(
            f"{name} is not acyclic: node {node} lies on a directed cycle "
            f'(orientation="given" needs a DAG; use orientation="index" for undirected graphs)'
        )
    return depth


def orient(edge_index: Tensor, num_nodes: int, orientation: str) -> tuple[Tensor, Tensor]:
    if orientation == "index":
        return orient_by_index(edge_index, num_nodes)
    if orientation == "given":  # acyclicity is checked by the caller, which needs the depths anyway
        return edge_index, torch.arange(edge_index.size(1), device=edge_index.device)
    raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
