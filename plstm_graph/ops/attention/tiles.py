"""Key chunks of a batch of graphs: the layout shared by the 2- and 1-pass cascades.

Every graph's nodes are cut into *tiles* of ``chunk_size`` consecutive nodes (its last tile
padded). Attention stays inside a graph, so at step ``j`` every query tile meets the
``j``-th key tile of its own graph: the keys are split as M = M1 x M0 with M1 = steps and
M0 = ``chunk_size``, and each step's scores take ``O(nodes x chunk_size)`` memory.

Graphs are laid out by decreasing tile count, so the query tiles whose graph still has a
``j``-th key tile are a prefix ``[:active[j]]`` of all tiles: small graphs drop out of the
loop after their last tile instead of being padded to the largest graph.

Tensors in this layout have shape ``[H, T, C, D]`` (heads, tiles, chunk_size, features).
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor

#: Masked scores (-inf) are clamped here before exp, then zeroed: torch.exp on CPU takes a
#: slow path, ~25x, for results that underflow, exp(-inf) included.
EXP_FLOOR = -100.0


@dataclass(frozen=True)
class Tiles:
    r"""Where every node sits in the ``[H, T, C, D]`` tile layout, and which key tile each
    query tile meets at each step.

    Build it with :meth:`from_batch`; :meth:`pack` and :meth:`unpack` move tensors between
    PyG node order ``[N, H, D]`` and the tile layout; :meth:`qk`, :meth:`pv` and
    :meth:`ptx_add_` are the three products of a step, and :meth:`scores` the masked
    :meth:`qk`.
    """

    chunk_size: int
    causal: bool
    #: [N] row of each node in the flattened ``[T * C]`` tile layout
    slot: Tensor
    #: [T, C] position of each tile slot inside its graph (padding slots included)
    position: Tensor
    #: [T, C] whether the slot holds a node
    valid: Tensor
    #: [T] first tile of each tile's graph
    first_tile: Tensor
    #: active[j]: number of query tiles whose graph has a j-th key tile (a prefix)
    active: List[int]
    #: single[j]: one graph alone is active at step j (the largest, which starts at tile 0)
    single: List[bool]
    #: padded[j]: some key tile met at step j holds padding slots
    padded: List[bool]
    #: node n sits in slot n (no padding, graphs already in layout order): packing is a view
    identity: bool

    @classmethod
    def from_batch(cls, batch: Optional[Tensor], num_nodes: int, chunk_size: int,
                   causal: bool = False) -> "Tiles":
        r"""Layout of the graphs given by ``batch`` ([N], sorted; ``None`` for one graph)."""
        device = batch.device if batch is not None else torch.device("cpu")
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
        C = chunk_size
        sizes = torch.bincount(batch)  # missing ids are graphs of size 0: they get no tile
        num_tiles = (sizes + C - 1) // C
        order = torch.sort(num_tiles, descending=True, stable=True).indices
        tile_start = torch.zeros_like(num_tiles)
        tile_start[order] = torch.cumsum(num_tiles[order], 0) - num_tiles[order]

        node_start = torch.cumsum(sizes, 0) - sizes
        pos = torch.arange(num_nodes, device=device) - node_start[batch]
        slot = (tile_start[batch] + pos // C) * C + pos % C

        tile_graph = torch.repeat_interleave(order, num_tiles[order])
        first_tile = tile_start[tile_graph]
        position = ((torch.arange(tile_graph.numel(), device=device) - first_tile) * C)[:, None] \
            + torch.arange(C, device=device)
        valid = position < sizes[tile_graph][:, None]

        # Python-side schedule of the loop over key tiles (the host syncs happen here, once).
        # Graphs are sorted by decreasing tile count, so the live ones at step j are a prefix.
        n_sorted = num_tiles[order]
        steps = int(n_sorted[0]) if n_sorted.numel() else 0
        live = n_sorted.numel() - torch.searchsorted(
            n_sorted.flip(0), torch.arange(steps, device=device), right=True)
        active = torch.cumsum(n_sorted, 0)[live - 1] if steps else live
        partial_last = (num_tiles - 1)[sizes % C != 0]
        padded = torch.zeros(steps, dtype=torch.bool, device=device)
        padded[partial_last] = True
        identity = slot.numel() == position.numel() and bool(
            (slot == torch.arange(num_nodes, device=device)).all())
        return cls(C, causal, slot, position, valid, first_tile, active.tolist(),
                   (live == 1).tolist(), padded.tolist(), identity)

    @property
    def num_tiles(self) -> int:
        return self.position.size(0)

    @property
    def num_steps(self) -> int:
        return len(self.active)

    def pack(self, x: Tensor) -> Tensor:
        r"""``[N, H, D]`` node order -> ``[H, T, C, D]`` tiles, zero in padding slots."""
        N, H, D = x.shape
        flat = x if self.identity else \
            x.new_zeros(self.num_tiles * self.chunk_size, H, D).index_copy(0, self.slot, x)
        return flat.view(self.num_tiles, self.chunk_size, H, D).permute(2, 0, 1, 3).contiguous()

    def unpack(self, xt: Tensor) -> Tensor:
        r"""``[H, T, C, D]`` tiles -> ``[N, H, D]`` node order."""
        H, T, C, D = xt.shape
        flat = xt.permute(1, 2, 0, 3).reshape(T * C, H, D)
        return flat if self.identity else flat.index_select(0, self.slot)

    def key_tiles(self, j: int) -> Tensor:
        r"""[A] the key tile each active query tile meets at step ``j``."""
        return self.first_tile[: self.active[j]] + j

    def scores(self, x: Tensor, y: Tensor, j: int) -> Tuple[Tensor, Optional[Tensor]]:
        r"""Scores of step ``j``, ``x_a @ y_j^T`` [H, A, C, C] with -inf where a key is
        padding or (causal) in the future, and ``keep`` (1 or 0, [A, C or 1, C]) to zero
        those entries exactly after exp; ``keep`` is ``None`` when every score is real."""
        S = self.qk(x, y, j)
        if not (self.causal or self.padded[j]):
            return S, None
        C = self.chunk_size
        key_valid = self.valid[self.key_tiles(j)][:, None, :]  # [A, 1, C]
        if self.causal:
            # A graph starts at a tile boundary, so query tile i meets key tile j fully
            # (i > j), not at all (i < j), or through the lower triangle (i == j).
            query_tile = self.position[: self.active[j], 0] // C
            diagonal = torch.ones(C, C, dtype=torch.bool, device=S.device).tril()
            patterns = torch.stack([torch.zeros_like(diagonal), diagonal,
                                    torch.ones_like(diagonal)])
            key_valid = key_valid & patterns[(query_tile - j).clamp(-1, 1) + 1]
        # Float masks: on CPU, masked_fill or where through a bool mask costs several exps.
        keep = key_valid.to(S.dtype)
        return S.add_(keep.reciprocal().neg_().add_(1)), keep  # 1 - 1 / keep: 0 or -inf

    # The three products of a step, each a batched matmul over (head, query tile). When a
    # single graph is active, every query tile meets the same key tile and the product is
    # one [A * C, ...] GEMM per head, without gathering that key tile A times.

    def qk(self, x: Tensor, y: Tensor, j: int) -> Tensor:
        r"""``x_a @ y_j^T``: x [H, T, C, D] queries side, y [H, T, C, D] keys side
        -> [H, A, C, C]."""
        H, _, C, D = x.shape
        A = self.active[j]
        if self.single[j]:
            return (x[:, :A].reshape(H, A * C, D) @ y[:, j].mT).view(H, A, C, C)
        return x[:, :A] @ y[:, self.key_tiles(j)].mT

    def pv(self, p: Tensor, y: Tensor, j: int) -> Tensor:
        r"""``p @ y_j``: p [H, A, C, C], y [H, T, C, D] keys side -> [H, A, C, D]."""
        H, A, C, _ = p.shape
        if self.single[j]:
            return (p.reshape(H, A * C, C) @ y[:, j]).view(H, A, C, -1)
        return p @ y[:, self.key_tiles(j)]

    def ptx_add_(self, out: Tensor, p: Tensor, x: Tensor, j: int) -> None:
        r"""``out_j += p^T @ x_a`` summed over the query tiles meeting key tile j:
        out [H, T, C, D] keys side, p [H, A, C, C], x [H, T, C, D] queries side."""
        H, A, C, _ = p.shape
        if self.single[j]:
            out[:, j] += p.reshape(H, A * C, C).mT @ x[:, :A].reshape(H, A * C, -1)
        else:
            out.index_add_(1, self.key_tiles(j), p.mT @ x[:, :A])
