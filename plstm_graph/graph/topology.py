"""Topological helpers: CSR ranges, longest-path depths and cycle witnesses."""
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
    """Kahn's algorithm over adjacency lists.

    Returns ``(depth, done)``: ``depth[n]`` is the number of edges on the longest path ending at
    ``n`` and ``done[n]`` is False exactly for the nodes on or downstream of a cycle.

    A level-synchronous sweep with tensor operations pays a fixed cost per level, which
    dominates on deep graphs (12 s for a 100,000-node chain); this loop pays a fraction of a
    microsecond per edge, whatever the depth (about as fast on molecule batches).
    """
    src, dst = edge_index.cpu()
    perm, ptr = csr(src, num_nodes)
    targets, ptr = dst[perm].tolist(), ptr.tolist()
    in_degree = torch.bincount(dst, minlength=num_nodes).tolist()
    depth = [0] * num_nodes
    done = [False] * num_nodes
    ready = [node for node, degree in enumerate(in_degree) if not degree]
    while ready:
        node = ready.pop()
        done[node] = True
        reach = depth[node] + 1
        for target in targets[ptr[node]:ptr[node + 1]]:
            if depth[target] < reach:
                depth[target] = reach
            in_degree[target] -= 1
            if not in_degree[target]:
                ready.append(target)
    device = edge_index.device
    return (torch.tensor(depth, dtype=torch.long, device=device),
            torch.tensor(done, dtype=torch.bool, device=device))


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
