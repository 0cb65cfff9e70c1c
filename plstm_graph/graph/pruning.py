"""D-mode pruning of a line graph to a multitree (SPEC section 1, "D-mode pruning rule").

Line nodes are visited in (edge level, position) order; for the current line node ``cur`` its
predecessors are visited in the same order and the line edge ``pred -> cur`` is kept unless
``pred`` or one of its kept ancestors already reaches ``cur``. Keeping it makes ``pred`` and its
kept ancestors ancestors of ``cur``. Ancestor sets are Python ints used as bit sets (bit = rank
in the visiting order), so a set union is one big-integer ``|``.

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

    keep = torch.zeros(line_index.size(1), dtype=torch.bool)
    ancestors = [0] * num_edges  # kept ancestors of each line node, by rank
    current, reached = -1, 0
    for column, pred, cur in zip(visit.tolist(), pred_rank[visit].tolist(), cur_rank[visit].tolist()):
        if cur != current:
            if current >= 0:
                ancestors[current] = reached
            current, reached = cur, 0
        closure = ancestors[pred] | (1 << pred)
        if not closure & reached:
            reached |= closure
            keep[column] = True
    ancestors[current] = reached
    return line_index[:, keep.to(line_index.device)]
