"""Tiles of a batch of graphs: the layout shared by the 2- and 1-pass cascades.

The tile size is C = min(``chunk_size``, largest graph), so nothing is ever padded beyond
the batch's largest graph, whatever ``chunk_size`` is.

* A graph of more than C nodes is cut into tiles of C consecutive nodes (its last tile
  padded). At step ``j`` each of its query tiles meets its ``j``-th key tile: the keys are
  split as M = M1 x M0 with M1 = steps and M0 = C.
* Graphs of at most C nodes are packed whole, several to a tile (the variable-length
  layout of FlashAttention's ``cu_seqlens``): the largest graph left opens a tile and the
  smallest ones left fill it up (on ogbg-molbace batches 11 % fewer tiles than packing in
  batch order). Such a tile meets only itself, at step 0, through a block-diagonal mask. Two
  consecutive tiles hold more than C nodes together, so there are fewer than 2 N / C + 1.

Every step's scores therefore take ``O(nodes x C)`` memory. The multi-tile graphs come
first, by decreasing tile count, then the packed tiles: the query tiles whose graph still
has a ``j``-th key tile are a prefix ``[:active[j]]`` of all tiles, so small graphs leave
the loop after step 0.

Tensors in this layout have shape ``[H, T, C, D]`` (heads, tiles, tile size, features).
"""
from dataclasses import dataclass
from itertools import accumulate
from typing import List, Optional, Tuple

import torch
from torch import Tensor

#: Masked scores (-inf) are clamped here before exp, then zeroed. exp on CPU takes a slow
#: path, ~25x, for results below float32's normal range (arguments under -87.3), exp(-inf)
#: included; exp(-80) is still a normal float32.
EXP_FLOOR = -80.0


@dataclass(frozen=True)
class Tiles:
    r"""Where every node sits in the ``[H, T, C, D]`` tile layout, and which key tile each
    query tile meets at each step.

    Build it with :meth:`from_batch`; :meth:`pack` and :meth:`unpack` move tensors between
    PyG node order ``[N, H, D]`` and the tile layout; :meth:`qk`, :meth:`pv` and
    :meth:`ptx_add_` are the three products of a step, and :meth:`scores` the masked
    :meth:`qk`.
    """

    #: C, nodes per tile: min(chunk_size, largest graph)
    chunk_size: int
    causal: bool
    #: [N] row of each node in the flattened ``[T * C]`` tile layout
    slot: Tensor
    #: [T, C] graph of each tile slot (-1 in padding slots)
    graph: Tensor
    #: [T, C] position of each tile slot inside its graph
    position: Tensor
    #: [T, C] whether the slot holds a node (a key to attend to)
    valid: Tensor
    #: [T] first tile of each tile's graph (a packed tile is its own first tile)
    first_tile: Tensor
    #: active[j]: number of query tiles whose graph has a j-th key tile (a prefix)
    active: List[int]
    #: single[j]: one graph alone is active at step j (the largest, which starts at tile 0)
    single: List[bool]
    #: masked[j]: some score of step j is not a real key of the query's graph (padding
    #: slots, or other graphs of a packed tile)
    masked: List[bool]
    #: every tile holds whole graphs (no graph spans tiles): one step, each tile meets itself
    packed: bool
    #: some tile holds several graphs: step 0 needs the block-diagonal mask
    mixed: bool
    #: node n sits in slot n (no padding, graphs already in layout order): packing is a view
    identity: bool

    @classmethod
    def from_batch(cls, batch: Optional[Tensor], num_nodes: int, chunk_size: int,
                   causal: bool = False) -> "Tiles":
        r"""Layout of the graphs given by ``batch`` ([N], sorted; ``None`` for one graph)."""
        device = batch.device if batch is not None else torch.device("cpu")
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
        sizes = torch.bincount(batch)  # missing ids are graphs of size 0: they get no slot
        # The schedule is Python-side: the host syncs happen here, once per layout.
        size_list = sizes.tolist()
        C = max(1, min(chunk_size, max(size_list, default=1)))

        # Multi-tile graphs first, by decreasing tile count (stable), then packed tiles.
        tiles_of = [-(-n // C) for n in size_list]
        large = sorted((g for g, n in enumerate(size_list) if n > C), key=lambda g: -tiles_of[g])
        start, offset = [0] * len(size_list), [0] * len(size_list)
        group_tiles = [tiles_of[g] for g in large]
        for g, first in zip(large, accumulate([0] + group_tiles)):
            start[g] = first
        num_large = sum(group_tiles)
        # Small graphs: the largest one left opens a tile, the smallest ones left fill it up.
        small = sorted((g for g, n in enumerate(size_list) if 0 < n <= C),
                       key=size_list.__getitem__)
        lo, hi, num_packed, mixed = 0, len(small) - 1, 0, False
        while lo <= hi:
            tile = num_large + num_packed
            g, hi = small[hi], hi - 1
            start[g], fill = tile, size_list[g]
            while lo <= hi and fill + size_list[small[lo]] <= C:
                g, lo = small[lo], lo + 1
                start[g], offset[g], fill, mixed = tile, fill, fill + size_list[g], True
            num_packed += 1
        T = num_large + num_packed
        group_tiles += [1] * num_packed
        group_first = [start[g] for g in large] + list(range(num_large, T))

        node_start = torch.cumsum(sizes, 0) - sizes
        pos = torch.arange(num_nodes, device=device) - node_start[batch]
        # One formula for both kinds: a multi-tile graph has offset 0 and fills its tiles.
        slot = torch.tensor(start, dtype=torch.long, device=device)[batch] * C \
            + torch.tensor(offset, dtype=torch.long, device=device)[batch] + pos
        graph = torch.full((T * C,), -1, dtype=torch.long, device=device).index_copy_(0, slot, batch)
        position = torch.zeros(T * C, dtype=torch.long, device=device).index_copy_(0, slot, pos)
        first_tile = torch.repeat_interleave(torch.tensor(group_first, dtype=torch.long),
                                             torch.tensor(group_tiles, dtype=torch.long))

        # Groups (graphs or packed tiles) come by non-increasing tile count, so those live at
        # step j are the first live[j], and their tiles the first active[j].
        steps = group_tiles[0] if group_tiles else 0
        ascending = torch.tensor(group_tiles[::-1], dtype=torch.long)
        live = (len(group_tiles) - torch.searchsorted(ascending, torch.arange(steps),
                                                      right=True)).tolist()
        tile_total = list(accumulate(group_tiles))
        active = [tile_total[n - 1] for n in live]
        masked = [False] * steps
        for g in large:
            if size_list[g] % C:
                masked[tiles_of[g] - 1] = True  # the graph's padded last tile
        if num_packed and any(0 < n < C for n in size_list):
            masked[0] = True  # some packed tile holds several graphs or padding
        identity = T * C == num_nodes and bool(
            (slot == torch.arange(num_nodes, device=device)).all())
        return cls(C, causal, slot, graph.view(T, C), position.view(T, C),
                   (graph >= 0).view(T, C), first_tile.to(device), active,
                   [n == 1 for n in live], masked, num_large == 0, mixed, identity)

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
            x.new_zeros(self.num_tiles * self.chunk_size, H, D).index_copy_(0, self.slot, x)
        return flat.view(self.num_tiles, self.chunk_size, H, D).permute(2, 0, 1, 3).contiguous()

    def unpack(self, xt: Tensor) -> Tensor:
        r"""``[H, T, C, D]`` tiles -> ``[N, H, D]`` node order."""
        H, T, C, D = xt.shape
        flat = xt.permute(1, 2, 0, 3).reshape(T * C, H, D)
        return flat if self.identity else flat.index_select(0, self.slot)

    def key_tiles(self, j: int) -> Tensor:
        r"""[A] the key tile each active query tile meets at step ``j``."""
        return self.first_tile[: self.active[j]] + j

    def scores(self, x: Tensor, y_t: Tensor, j: int) -> Tuple[Tensor, Optional[Tensor]]:
        r"""Scores of step ``j``, ``x_a @ y_j^T`` [H, A, C, C] with -inf where the key is not
        one of the query's graph (padding, another graph of a packed tile) or, when causal,
        comes after the query; and ``keep`` (1 or 0, [A, C or 1, C]) to zero those entries
        exactly after exp. ``keep`` is ``None`` when every score is real."""
        S = self.qk(x, y_t, j)
        if not (self.causal or self.masked[j]):
            return S, None
        A, keys = self.active[j], self.key_tiles(j)
        keep = self.valid[keys][:, None, :]  # [A, 1, C]
        if self.causal or (j == 0 and self.mixed):
            # Per query: same graph (block-diagonal on packed tiles) and, when causal, not
            # later in the graph. Tiles of one multi-tile graph pass the first test.
            keep = keep & (self.graph[:A, :, None] == self.graph[keys][:, None, :])
            if self.causal:
                keep = keep & (self.position[keys][:, None, :] <= self.position[:A, :, None])
        # Float masks, [A, ., C] (a quarter of the scores with 4 heads): on CPU, masked_fill
        # or where on the scores through a bool mask costs several exps.
        bias = torch.zeros((), dtype=S.dtype, device=S.device).where(keep, float("-inf"))
        return S.add_(bias), keep.to(S.dtype)

    # The three products of a step, each a batched matmul over (head, query tile). When a
    # single graph is active, every query tile meets the same key tile and the product is
    # one [A * C, ...] GEMM per head, without gathering that key tile A times. When the
    # tiles hold whole graphs, each meets itself: no gather either. The key side of ``qk``
    # comes transposed (``transpose_keys``): a GEMM reading a transposed operand costs
    # about 1.5x as much on CPU, and a key tile is read at many steps.

    def _keys(self, y: Tensor, j: int) -> Tensor:
        r"""[H, A, ...] the key tile each active query tile meets at step ``j``."""
        return y[:, : self.active[j]] if self.packed else y[:, self.key_tiles(j)]

    @staticmethod
    def transpose_keys(y: Tensor) -> Tensor:
        r"""``[H, T, C, D]`` -> ``[H, T, D, C]``, contiguous: the key side of :meth:`qk`."""
        return y.transpose(-1, -2).contiguous()

    def qk(self, x: Tensor, y_t: Tensor, j: int) -> Tensor:
        r"""``x_a @ y_j^T``: x [H, T, C, D] queries side, y_t [H, T, D, C] keys side,
        transposed (:meth:`transpose_keys`) -> [H, A, C, C]."""
        H, _, C, D = x.shape
        A = self.active[j]
        if self.single[j]:
            return (x[:, :A].reshape(H, A * C, D) @ y_t[:, j]).view(H, A, C, C)
        return x[:, :A] @ self._keys(y_t, j)

    def pv(self, p: Tensor, y: Tensor, j: int) -> Tensor:
        r"""``p @ y_j``: p [H, A, C, C], y [H, T, C, D] keys side -> [H, A, C, D]."""
        H, A, C, _ = p.shape
        if self.single[j]:
            return (p.reshape(H, A * C, C) @ y[:, j]).view(H, A, C, -1)
        return p @ self._keys(y, j)

    def ptx_add_(self, out: Tensor, p: Tensor, x: Tensor, j: int) -> None:
        r"""``out_j += p^T @ x_a`` summed over the query tiles meeting key tile j:
        out [H, T, C, D] keys side, p [H, A, C, C], x [H, T, C, D] queries side."""
        H, A, C, _ = p.shape
        if self.single[j]:
            out[:, j] += p.reshape(H, A * C, C).mT @ x[:, :A].reshape(H, A * C, -1)
        elif self.packed:
            out[:, :A] += p.mT @ x[:, :A]
        else:
            out.index_add_(1, self.key_tiles(j), p.mT @ x[:, :A])
