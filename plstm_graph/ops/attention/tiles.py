"""Tiles of a batch of graphs: the layout shared by the 2- and 1-pass cascades.

The tile size is C = min(``chunk_size``, largest graph rounded up to a multiple of
:data:`TILE_ALIGN`), so nothing is ever padded far beyond the batch's largest graph,
whatever ``chunk_size`` is.

* A graph of more than C nodes is cut into tiles of C consecutive nodes (its last tile
  padded); its keys are split as M = M1 x M0 with M0 = C (or a run of r tiles, r C).
* Graphs of at most C nodes are packed whole, several to a tile (the variable-length
  layout of FlashAttention's ``cu_seqlens``): the largest graph left opens a tile and the
  smallest ones left fill it up (on ogbg-molbace batches 11 % fewer tiles than packing in
  batch order). Two consecutive tiles hold more than C nodes together, so there are fewer
  than 2 N / C + 1.

Every step's scores therefore take ``O(nodes x C)`` memory. The tiles of multi-tile graphs
come first, by decreasing tile count, then the packed tiles. The steps (:class:`Step`):

* the *diagonal* step, when there are packed tiles: each packed tile meets itself, through
  a block-diagonal mask when it holds several graphs. It is one batched product on slices
  of the layout, without gathering any key tile, and comes first: the 1-pass cascade keeps
  the weights of its first step for the backward (a batch of molecules is this step alone);
* then the multi-tile graphs' steps. Several such graphs: at step ``j = 0, 1, ...`` each
  query tile meets its graph's ``j``-th key tile, and the query tiles whose graph still has
  one are a prefix of the layout (a staircase). One such graph (a large graph alone, or
  with molecules): blocks of ``A`` query tiles meet runs of ``r`` key tiles, with ``A r``
  at most ``m = min(n, STEP_TILE_PAIRS)`` tile pairs (r the largest power of 2 with r * r
  <= m, A = m // r), each step one ``[A C, D] x [D, r C]`` GEMM per head. A step's scores
  stay within m x C x C (near the cache, as FlashAttention's blocks), the GEMMs are wider
  than one key tile's, and a query's running max and sums are rescaled n / r times, not n.

Tensors in this layout have shape ``[H, T, C, D]`` (heads, tiles, tile size, features);
padding slots hold zeros.
"""
import math
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

#: The cascades compute scores in base 2, ``log2(e) s q.k``, and weights with ``exp2``: on
#: CPU, ``torch.exp2`` is 1.4-2.5x faster than ``torch.exp`` and, unlike it, has no slow path
#: for -inf (masked scores), so masks need no clamp and no multiplication after the
#: exponential (FlashAttention-2 does the same on GPUs).
LOG2E = math.log2(math.e)

#: Tiles are as wide as the largest graph rounded up to a multiple of this (at most
#: ``chunk_size``): on CPU, reductions over a last dimension of 55 cost several times those
#: over 64, and the small batched GEMMs prefer aligned rows too (the attention of
#: ogbg-molbace batches took about 15 % less with 16 than with 1).
TILE_ALIGN = 16


#: At most this many (query tile, key tile) pairs in a step of a graph that spans several
#: tiles: H x 16 x C x C scores (1 MiB at H = 4, C = 64 in float32). Measured on one graph
#: (1-pass forward + backward against SDPA, README "Speed, round 7"): level with steps of n
#: pairs at N = 1024, ahead from N = 2048 on (at N = 4096 1.28-1.41x SDPA's time against
#: 1.54-1.91x), as the steps' scores outgrew the cache; 8, 12 and 32 pairs were within the
#: same spread as 16.
STEP_TILE_PAIRS = 16


@dataclass(frozen=True)
class Step:
    r"""One step of the cascades: the query tiles ``rows`` each meet one key tile, or all meet
    the same run of key tiles, ``span``."""

    #: query tiles taking part, a contiguous range of the layout
    rows: slice
    #: [A] the key tile each query tile meets; ``None`` on the diagonal step (each tile meets
    #: itself) and when all meet ``span``
    keys: Optional[Tensor] = None
    #: consecutive key tiles of one graph that every query tile meets (a single multi-tile
    #: graph), else ``None``
    span: Optional[slice] = None
    #: some score is not a real key of the query's graph (padding, the other graphs of a
    #: packed tile): the step needs a mask even when not causal
    masked: bool = False
    #: the first step of its query tiles: nothing accumulated for them yet
    first: bool = False

    @property
    def diagonal(self) -> bool:
        return self.keys is None and self.span is None


@dataclass(frozen=True)
class Tiles:
    r"""Where every node sits in the ``[H, T, C, D]`` tile layout, and which key tile each
    query tile meets at each step.

    Build it with :meth:`from_batch`, once per batch: every attention layer of a model can
    share it (the layout with its masks takes about 1 ms on a molecule batch, 5-10 % of an
    attention call). :meth:`pack` and :meth:`unpack` move tensors between PyG node
    order ``[N, H, D]`` and the tile layout; :meth:`qk`, :meth:`pv` and :meth:`ptx_add_` are
    the three products of a step, and :meth:`scores` the masked :meth:`qk`.
    """

    #: C, nodes per tile: min(chunk_size, largest graph rounded up to TILE_ALIGN)
    chunk_size: int
    causal: bool
    #: [N] row of each node in the flattened ``[T * C]`` tile layout
    slot: Tensor
    #: [T * C] node of each row of the flattened layout (N in padding slots: a zero row)
    source: Tensor
    #: [T, C] graph of each tile slot (-1 in padding slots)
    graph: Tensor
    #: [T, C] position of each tile slot inside its graph
    position: Tensor
    #: [T, C] whether the slot holds a node (a key to attend to)
    valid: Tensor
    #: tiles of graphs that span several tiles (the first ones); packed tiles follow
    num_large: int
    steps: List[Step]
    #: some packed tile holds several graphs: the diagonal step needs the block-diagonal mask
    mixed: bool
    #: node n sits in slot n (no padding, graphs already in layout order): packing is a view
    identity: bool
    #: masks built once per step and dtype, shared by every call on this layout
    _bias: Dict[Tuple[int, torch.dtype], Optional[Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

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
        largest = max(size_list, default=1)
        C = max(1, min(chunk_size, -(-largest // TILE_ALIGN) * TILE_ALIGN))

        # Multi-tile graphs first, by decreasing tile count (stable), then packed tiles.
        tiles_of = [-(-n // C) for n in size_list]
        large = sorted((g for g, n in enumerate(size_list) if n > C), key=lambda g: -tiles_of[g])
        start, offset = [0] * len(size_list), [0] * len(size_list)
        large_tiles = [tiles_of[g] for g in large]
        for g, first in zip(large, accumulate([0] + large_tiles)):
            start[g] = first
        num_large = sum(large_tiles)
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

        node_start = torch.cumsum(sizes, 0) - sizes
        pos = torch.arange(num_nodes, device=device) - node_start[batch]
        # One formula for both kinds: a multi-tile graph has offset 0 and fills its tiles.
        slot = torch.tensor(start, dtype=torch.long, device=device)[batch] * C \
            + torch.tensor(offset, dtype=torch.long, device=device)[batch] + pos
        source = torch.full((T * C,), num_nodes, dtype=torch.long, device=device)
        source[slot] = torch.arange(num_nodes, device=device)
        graph = torch.full((T * C,), -1, dtype=torch.long, device=device)
        graph[slot] = batch
        position = torch.zeros(T * C, dtype=torch.long, device=device)
        position[slot] = pos

        steps = []
        if num_packed:  # the diagonal step; a tile not filled by one graph needs the mask
            steps.append(Step(slice(num_large, T), first=True,
                              masked=any(size_list[g] < C for g in small)))
        # Steps whose key tile is some graph's padded last one need the mask.
        padded = {tiles_of[g] - 1 for g in large if size_list[g] % C}
        if len(large) == 1:
            steps += _blocks(large_tiles[0], bool(padded))
        elif large:
            steps += _staircase(large_tiles, [start[g] for g in large], padded, device)
        identity = T * C == num_nodes and bool(
            (slot == torch.arange(num_nodes, device=device)).all())
        return cls(C, causal, slot, source, graph.view(T, C), position.view(T, C),
                   (graph >= 0).view(T, C), num_large, steps, mixed, identity)

    @property
    def num_tiles(self) -> int:
        return self.position.size(0)

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    def pack(self, x: Tensor) -> Tensor:
        r"""``[N, H, D]`` node order -> ``[H, T, C, D]`` tiles, zero in padding slots."""
        N, H, D = x.shape
        x = x.transpose(0, 1)
        if self.identity:
            return x.reshape(H, self.num_tiles, self.chunk_size, D).contiguous()
        # A gather (index_select) from x and a zero row: several times faster on CPU than
        # scattering into zeros with index_copy_.
        x = torch.cat([x, x.new_zeros(H, 1, D)], 1)
        return x.index_select(1, self.source).view(H, self.num_tiles, self.chunk_size, D)

    def unpack(self, xt: Tensor) -> Tensor:
        r"""``[H, T, C, D]`` tiles -> ``[N, H, D]`` node order (a transposed view)."""
        H, T, C, D = xt.shape
        flat = xt.reshape(H, T * C, D)
        return (flat if self.identity else flat.index_select(1, self.slot)).transpose(0, 1)

    def scores(self, x: Tensor, y: Tensor, s: int) -> Tensor:
        r"""Scores of step ``s``, ``x_a @ y_keys^T`` (:meth:`qk`), -inf where the key is not
        one of the query's graph (padding, another graph of a packed tile) or, when causal,
        comes after the query."""
        S = self.qk(x, y, self.steps[s])
        bias = self.bias(s, S.dtype)
        return S if bias is None else S.add_(bias)

    def bias(self, s: int, dtype: torch.dtype) -> Optional[Tensor]:
        r"""The additive mask of step ``s``: 0 or -inf, broadcast over the heads to the
        scores' [A, C, K]; ``None`` when every score is real."""
        step = self.steps[s]
        # Masks without a query dimension and the diagonal step's take O(nodes x C) in all:
        # built once per layout. The causal masks of a multi-tile graph's steps would take
        # O(nodes x graph size) together: built at each call.
        if self.causal and not step.diagonal:
            return self._build_bias(step, dtype)
        if (s, dtype) not in self._bias:
            self._bias[s, dtype] = self._build_bias(step, dtype)
        return self._bias[s, dtype]

    def _build_bias(self, step: Step, dtype: torch.dtype) -> Optional[Tensor]:
        if not (self.causal or step.masked):
            return None
        rows = step.rows
        if step.span is not None:  # one graph: its keys flattened over the span, [1, 1, r C]
            keep = self.valid[step.span].reshape(1, 1, -1)
            if self.causal:
                keep = keep & (self.position[step.span].reshape(1, 1, -1)
                               <= self.position[rows, :, None])
        else:
            keys = rows if step.keys is None else step.keys
            keep = self.valid[keys][:, None, :]  # [A, 1, C]
            if self.causal or (step.diagonal and self.mixed):
                # Per query: same graph (block-diagonal on packed tiles) and, when causal,
                # not later in the graph. Tiles of one multi-tile graph pass the first test.
                keep = keep & (self.graph[rows, :, None] == self.graph[keys][:, None, :])
                if self.causal:
                    keep = keep & (self.position[keys][:, None, :] <= self.position[rows, :, None])
        return torch.zeros((), dtype=dtype, device=keep.device).where(keep, float("-inf"))

    # The products of a step, each a batched matmul over (head, query tile). On a span, all
    # query tiles meet the same key tiles: one [A * C, ...] GEMM per head, without gathering
    # those key tiles A times; on the diagonal step each tile meets itself (slices, no
    # gather either). The keys are read transposed (``.mT``) rather than transposed once
    # per call: the copy costs more than the slower GEMM on the molecule batches' tiles.

    def _keys(self, y: Tensor, step: Step) -> Tensor:
        r"""The key side of a step: [H, rC, D] on a span (a view), else [H, A, C, D]."""
        if step.span is not None:
            return y[:, step.span].flatten(1, 2)
        return y[:, step.rows] if step.keys is None else y[:, step.keys]

    def qk(self, x: Tensor, y: Tensor, step: Step) -> Tensor:
        r"""``x_a @ y_keys^T``: x, y [H, T, C, D] queries and keys side -> [H, A, C, C], or
        [H, A, C, r C] on a span of r key tiles."""
        x = x[:, step.rows]
        if step.span is not None:
            H, A, C, D = x.shape
            return (x.reshape(H, A * C, D) @ self._keys(y, step).mT).view(H, A, C, -1)
        return x @ self._keys(y, step).mT

    def pv(self, p: Tensor, y: Tensor, step: Step) -> Tensor:
        r"""``p @ y_keys``: p [H, A, C, K] (a step's weights), y [H, T, C, D] -> [H, A, C, D]."""
        if step.span is not None:
            H, A, C, K = p.shape
            return (p.reshape(H, A * C, K) @ self._keys(y, step)).view(H, A, C, -1)
        return p @ self._keys(y, step)

    def pv_add_(self, out: Tensor, p: Tensor, y: Tensor, step: Step) -> None:
        r"""``out_a += p @ y_keys``: out [H, T, C, D] queries side (the sum inside the GEMM on
        a span)."""
        if step.span is not None:
            H, A, C, K = p.shape
            out[:, step.rows].flatten(1, 2).baddbmm_(p.reshape(H, A * C, K), self._keys(y, step))
        else:
            out[:, step.rows] += self.pv(p, y, step)

    def ptx_add_(self, out: Tensor, p: Tensor, x: Tensor, step: Step) -> None:
        r"""``out_keys += p^T @ x_a`` summed over the query tiles meeting each key tile:
        out [H, T, C, D] keys side, p [H, A, C, K], x [H, T, C, D] queries side. The
        diagonal step's key tiles meet no other step: it writes them (``out`` may hold
        anything there)."""
        x = x[:, step.rows]
        if step.span is not None:
            H, A, C, K = p.shape
            out[:, step.span].flatten(1, 2).baddbmm_(p.reshape(H, A * C, K).mT,
                                                     x.reshape(H, A * C, -1))
        elif step.keys is None:
            out[:, step.rows] = p.mT @ x
        else:
            out.index_add_(1, step.keys, p.mT @ x)


def _staircase(large_tiles: List[int], starts: List[int], padded: set,
               device: torch.device) -> List[Step]:
    r"""Steps of several multi-tile graphs (of ``large_tiles`` tiles, non-increasing, from
    tiles ``starts``): at step j each query tile meets its graph's j-th key tile. The graphs
    live at step j are the first live[j], and their tiles the first active[j]."""
    first_tile = torch.repeat_interleave(torch.tensor(starts, dtype=torch.long),
                                         torch.tensor(large_tiles, dtype=torch.long)).to(device)
    ascending = torch.tensor(large_tiles[::-1], dtype=torch.long)
    live = (len(large_tiles) - torch.searchsorted(ascending, torch.arange(large_tiles[0]),
                                                  right=True)).tolist()
    tile_total = list(accumulate(large_tiles))
    steps = []
    for j, n in enumerate(live):
        A = tile_total[n - 1]
        # One graph left: it is the largest, which starts at tile 0.
        steps.append(Step(slice(0, A), span=slice(j, j + 1), masked=j in padded, first=j == 0)
                     if n == 1 else Step(slice(0, A), keys=first_tile[:A] + j,
                                         masked=j in padded, first=j == 0))
    return steps


def _blocks(n: int, padded: bool) -> List[Step]:
    r"""Steps of one graph of ``n`` tiles (tiles 0 ... n-1): blocks of ``A`` query tiles, each
    meeting runs of ``r`` key tiles, ``A r <= m = min(n, STEP_TILE_PAIRS)`` (r the largest
    power of 2 with r * r <= m, A = m // r), so that a step holds the scores of at most m
    pairs of tiles. The products are wider than one key tile's ([A C, D] x [D, r C]), and the
    running max and sums of a query are rescaled n / r times instead of n."""
    pairs = min(n, STEP_TILE_PAIRS)
    r = 1 << (math.isqrt(pairs).bit_length() - 1)
    A = pairs // r
    return [Step(slice(a, min(a + A, n)), span=slice(j, min(j + r, n)),
                 masked=padded and j + r >= n, first=j == 0)
            for a in range(0, n, A) for j in range(0, n, r)]
