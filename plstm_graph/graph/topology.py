"""Vectorised topological sweeps: CSR ranges, longest-path depths and cycle witnesses.

Every loop here runs once per topological level (the graph's depth), never once per edge.
"""
import torch
from torch import Tensor


def expand_ranges(starts: Tensor, counts: Tensor) -> Tensor:
    """Concatenate ``arange(s, s + c)`` for every pair: ``[sum(counts)]``."""
    total = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    step = torch.arange(total, device=counts.device)
    return step + torch.repeat_interleave(starts - offsets, counts, output_size=total)


def csr(index: Tensor, num_rows: int) -> tuple[Tensor, Tensor]:
    """Stable sort of ``index`` into rows: ``(perm, ptr)`` with row r at ``perm[ptr[r]:ptr[r+1]]``."""
    perm = torch.sort(index, stable=True).indices
    ptr = torch.zeros(num_rows + 1, dtype=torch.long, device=index.device)
    ptr[1:] = torch.cumsum(torch.bincount(index, minlength=num_rows), 0)
    return perm, ptr


def longest_path_depth(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Kahn's algorithm, one frontier at a time.

    Returns ``(depth, done)``: ``depth[n]`` is the number of edges on the longest path ending at
    ``n`` and ``done[n]`` is False exactly for the nodes on or downstream of a cycle.
    """
    src, dst = edge_index
    device = edge_index.device
    perm, ptr = csr(src, num_nodes)
    out_degree = ptr[1:] - ptr[:-1]
    in_degree = torch.bincount(dst, minlength=num_nodes)
    depth = torch.zeros(num_nodes, dtype=torch.long, device=device)
    done = torch.zeros(num_nodes, dtype=torch.bool, device=device)
    frontier = (in_degree == 0).nonzero().view(-1)
    level = 0
    while frontier.numel() > 0:
        depth[frontier] = level
        done[frontier] = True
        edges = perm[expand_ranges(ptr[frontier], out_degree[frontier])]
        targets = dst[edges]
        in_degree.index_add_(0, targets, torch.full_like(targets, -1))
        targets = targets.unique()
        frontier = targets[in_degree[targets] == 0]
        level += 1
    return depth, done


def node_on_cycle(edge_index: Tensor, done: Tensor) -> int:
    """A node on a directed cycle, given the ``done`` mask of :func:`longest_path_depth`.

    Every node Kahn could not finish has a predecessor it could not finish either, so walking
    predecessors from one of them must revisit a node, and that node lies on a cycle. This runs
    only on the error path.
    """
    src, dst = edge_index.tolist()
    remaining = ~done
    predecessor = {}
    for s, d in zip(src, dst):
        if remaining[s] and remaining[d]:
            predecessor.setdefault(d, s)
    node = int(remaining.nonzero()[0])
    seen = set()
    while node not in seen:
        seen.add(node)
        node = predecessor[node]
    return node
