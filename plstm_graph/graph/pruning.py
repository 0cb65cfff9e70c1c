"""D-mode pruning of a line graph to a multitree (SPEC section 1, "D-mode pruning rule").

Line nodes are visited in (edge level, position) order; for the current line node ``cur`` its
predecessors are visited in the same order and the line edge ``pred -> cur`` is kept unless
``pred`` or one of its kept ancestors already reaches ``cur``. Keeping it makes ``pred`` and its
kept ancestors ancestors of ``cur``. Ancestor sets are Python ints used as bit sets (bit = rank
in the visiting order), so a set union is one big-integer ``|``; a line node with a single
predecessor links to it instead of copying its set.

The walk is sequential, like the reference implementation; :class:`~plstm_graph.PrepareDAG`
runs it once per graph and stores the result. Graphs of a disjoint union never share an
ancestor, so pruning a batch equals pruning its graphs one by one.
"""
import torch
from torch import Tensor


def prune_to_multitree(line_index: Tensor, edge_level: Tensor) -> Tensor:
    """Kept line edges ``[2, L']`` (a subset of ``line_index``, in its column order)."""
    num_edges = edge_level.numel()
    if line_index.size(1) == 0:
        return line_index
    # Visiting rank: by level, ties by position (a stable sort keeps positions in order).
    order = torch.sort(edge_level, stable=True).indices
    rank = torch.empty_like(order)
    rank[order] = torch.arange(num_edges, device=order.device)
    pred_rank, cur_rank = rank[line_index[0]], rank[line_index[1]]
    # Line edges grouped by their target's rank, predecessors in rank order within a group.
    visit = torch.sort(pred_rank, stable=True).indices
    visit = visit[torch.sort(cur_rank[visit], stable=True).indices]

    keep = [False] * line_index.size(1)
    # Kept ancestors of each line node, by rank. A node with one predecessor keeps it and
    # shares its ancestry: it only links to it (``parent``), and the set is built when a query
    # needs it. On a long chain no set is ever built; building them all would take quadratic
    # time and memory.
    ancestors = [0] * num_edges
    parent = [-1] * num_edges
    single = (torch.bincount(cur_rank, minlength=num_edges) == 1).tolist()

    def closure(node: int) -> int:
        """``{node}`` and its kept ancestors, as a bit set."""
        first, bits = node, 0
        while parent[node] >= 0:
            bits |= 1 << node
            node = parent[node]
        bits |= ancestors[node] | (1 << node)
        if first != node:  # remember the walk's result at its start
            ancestors[first], parent[first] = bits & ~(1 << first), -1
        return bits

    current, reached = -1, 0
    for column, pred, cur in zip(visit.tolist(), pred_rank[visit].tolist(), cur_rank[visit].tolist()):
        if single[cur]:
            parent[cur] = pred
            keep[column] = True
            continue
        if cur != current:
            if current >= 0:
                ancestors[current] = reached
            current, reached = cur, 0
        pred_closure = closure(pred)
        if not pred_closure & reached:
            reached |= pred_closure
            keep[column] = True
    if current >= 0:
        ancestors[current] = reached
    return line_index[:, torch.tensor(keep, dtype=torch.bool, device=line_index.device)]
