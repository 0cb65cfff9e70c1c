"""Tiles of a batch of graphs: the layout shared by the 2- and 1-pass cascades.

The tile size is C = min(``chunk_size``, largest graph rounded up to a multiple of
:data:`TILE_ALIGN`), so nothing is ever padded far beyond the batch's largest graph,
whatever ``chunk_size`` is.

* A graph of more than C nodes is cut into tiles of C consecutive nodes (its last tile
  padded). At its ``j``-th step each of its query tiles meets its ``j``-th key tile: the
  keys are split as M = M1 x M0 with M1 = steps and M0 = C.
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
* then the multi-tile graphs' steps ``j = 0, 1, ...``: the query tiles whose graph still
  has a ``j``-th key tile are a prefix of the layout. When one graph alone is left (one
  large graph) they all meet the same key tile: one ``[A * C, D]`` GEMM per head.

Tensors in this layout have shape ``[H, T, C, D]`` (heads, tiles, tile size, features);
padding slots hold zeros.
"""
import math
import weakref
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

#: The cascades compute scores in base 2, ``log2(e) s q.k``, and weights with ``exp2``: on
#: CPU, ``torch.exp2`` is 1.6-2.5x faster than ``torch.exp`` and, unlike it, has no slow path
#: for -inf (masked scores), so masks need no clamp and no multiplication after the
#: exponential (FlashAttention-2 does the same on GPUs).
LOG2E = math.log2(math.e)

#: Tiles are as wide as the largest graph rounded up to a multiple of this (at most
#: ``chunk_size``): on CPU, reductions over a last dimension of 55 cost several times those
#: over 64, and the small batched GEMMs prefer aligned rows too (an epoch of the attention
#: model on ogbg-molbace took about 20 % less with 16 than with 1).
TILE_ALIGN = 16


@dataclass(frozen=True)
class Step:
    r"""One step of the cascades: the query tiles ``rows`` each meet one key tile."""

    #: query tiles taking part, a contiguous range of the layout
    rows: slice
    #: [A] the key tile each query tile meets; ``None`` on the diagonal step (each tile meets
    #: itself) and when all meet the same one, ``key``
    keys: Optional[Tensor] = None
    #: the one key tile that every query tile meets (a single graph is left), else ``None``
    key: Optional[int] = None
    #: some score is not a real key of the query's graph (padding, the other graphs of a
    #: packed tile): the step needs a mask even when not causal
    masked: bool = False

    @property
    def diagonal(self) -> bool:
        return self.keys is None and self.key is None

    @property
    def key_tiles(self) -> Union[slice, Tensor]:
        r"""Index of the key tiles along the tile dimension, one per query tile (or one for
        all: a slice of length 1 broadcasts)."""
        if self.key is not None:
            return slice(self.key, self.key + 1)
        return self.rows if self.keys is None else self.keys


@dataclass(frozen=True)
class Tiles:
    r"""Where every node sits in the ``[H, T, C, D]`` tile layout, and which key tile each
    query tile meets at each step.

    Build it with :meth:`from_batch` (or :meth:`for_batch`, which reuses the layout of the
    last batch tensor it saw); :meth:`pack` and :meth:`unpack` move tensors between PyG node
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
            steps.append(Step(slice(num_large, T),
                              masked=any(size_list[g] < C for g in small)))
        # Multi-tile graphs come by non-increasing tile count, so those live at their step j
        # are the first live[j], and their tiles the first active[j].
        first_tile = torch.repeat_interleave(
            torch.tensor([start[g] for g in large], dtype=torch.long),
            torch.tensor(large_tiles, dtype=torch.long)).to(device)
        ascending = torch.tensor(large_tiles[::-1], dtype=torch.long)
        live = (len(large) - torch.searchsorted(
            ascending, torch.arange(large_tiles[0] if large else 0), right=True)).tolist()
        tile_total = list(accumulate(large_tiles))
        padded = {tiles_of[g] - 1 for g in large if size_list[g] % C}  # last tile not full
        for j, n in enumerate(live):
            A = tile_total[n - 1]
            # One graph left: it is the largest, which starts at tile 0.
            steps.append(Step(slice(0, A), keys=None if n == 1 else first_tile[:A] + j,
                              key=j if n == 1 else None, masked=j in padded))
        identity = T * C == num_nodes and bool(
            (slot == torch.arange(num_nodes, device=device)).all())
        return cls(C, causal, slot, source, graph.view(T, C), position.view(T, C),
                   (graph >= 0).view(T, C), num_large, steps, mixed, identity)

    @classmethod
    def for_batch(cls, batch: Optional[Tensor], num_nodes: int, chunk_size: int,
                  causal: bool = False) -> "Tiles":
        r""":meth:`from_batch`, reused while it is called with the same ``batch`` tensor
        (unchanged: same version counter) and arguments: every attention layer of a model
        sees the same batch, and building the layout and its masks costs about as much as
        the attention of a molecule batch's step."""
        key = (num_nodes, chunk_size, causal, None if batch is None else batch._version)
        last = _LAST_TILES.get("entry")
        if last is not None:
            ref, last_key, tiles = last
            if last_key == key and (ref is None if batch is None else ref() is batch):
                return tiles
        tiles = cls.from_batch(batch, num_nodes, chunk_size, causal)
        # A weak reference: the cache neither keeps the batch alive nor matches a new
        # tensor that happens to reuse a freed one's id.
        _LAST_TILES["entry"] = (None if batch is None else weakref.ref(batch), key, tiles)
        return tiles

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

    def scores(self, x: Tensor, y_t: Tensor, s: int) -> Tensor:
        r"""Scores of step ``s``, ``x_a @ y_j^T`` [H, A, C, C], -inf where the key is not one
        of the query's graph (padding, another graph of a packed tile) or, when causal, comes
        after the query."""
        S = self.qk(x, y_t, self.steps[s])
        bias = self.bias(s, S.dtype)
        return S if bias is None else S.add_(bias)

    def bias(self, s: int, dtype: torch.dtype) -> Optional[Tensor]:
        r"""The additive mask of step ``s``: 0 or -inf, [A, C or 1, C] (broadcast over the
        heads); ``None`` when every score is real. Built once per layout."""
        if (s, dtype) not in self._bias:
            self._bias[s, dtype] = self._build_bias(self.steps[s], dtype)
        return self._bias[s, dtype]

    def _build_bias(self, step: Step, dtype: torch.dtype) -> Optional[Tensor]:
        if not (self.causal or step.masked):
            return None
        keys = step.key_tiles
        keep = self.valid[keys][:, None, :]  # [A or 1, 1, C]
        if self.causal or (step.diagonal and self.mixed):
            # Per query: same graph (block-diagonal on packed tiles) and, when causal, not
            # later in the graph. Tiles of one multi-tile graph pass the first test.
            keep = keep & (self.graph[step.rows, :, None] == self.graph[keys][:, None, :])
            if self.causal:
                keep = keep & (self.position[keys][:, None, :]
                               <= self.position[step.rows, :, None])
        return torch.zeros((), dtype=dtype, device=keep.device).where(keep, float("-inf"))

    # The three products of a step, each a batched matmul over (head, query tile). When all
    # query tiles meet the same key tile, the product is one [A * C, ...] GEMM per head,
    # without gathering that key tile A times; on the diagonal step each tile meets itself
    # (slices, no gather either). The key side of ``qk`` comes transposed
    # (``transpose_keys``): a GEMM reading a transposed operand costs about 1.5x as much on
    # CPU, and a key tile is read at many steps.

    @staticmethod
    def _mm(a: Tensor, y: Tensor, step: Step) -> Tensor:
        r"""``a @ y_keys``: a [H, A, C, X] (the step's query tiles), y [H, T, X, Y]."""
        H, A, C, X = a.shape
        if step.key is not None:
            return (a.reshape(H, A * C, X) @ y[:, step.key]).view(H, A, C, -1)
        return a @ y[:, step.key_tiles]

    @staticmethod
    def transpose_keys(y: Tensor) -> Tensor:
        r"""``[H, T, C, D]`` -> ``[H, T, D, C]``, contiguous: the key side of :meth:`qk`."""
        return y.transpose(-1, -2).contiguous()

    def qk(self, x: Tensor, y_t: Tensor, step: Step) -> Tensor:
        r"""``x_a @ y_j^T``: x [H, T, C, D] queries side, y_t [H, T, D, C] keys side,
        transposed (:meth:`transpose_keys`) -> [H, A, C, C]."""
        return self._mm(x[:, step.rows], y_t, step)

    def pv(self, p: Tensor, y: Tensor, step: Step) -> Tensor:
        r"""``p @ y_j``: p [H, A, C, C], y [H, T, C, D] keys side -> [H, A, C, D]."""
        return self._mm(p, y, step)

    def ptx_add_(self, out: Tensor, p: Tensor, x: Tensor, step: Step) -> None:
        r"""``out_j += p^T @ x_a`` summed over the query tiles meeting key tile j:
        out [H, T, C, D] keys side, p [H, A, C, C], x [H, T, C, D] queries side."""
        H, A, C, _ = p.shape
        x = x[:, step.rows]
        if step.key is not None:
            out[:, step.key] += p.reshape(H, A * C, C).mT @ x.reshape(H, A * C, -1)
        elif step.diagonal:
            out[:, step.rows] += p.mT @ x
        else:
            out.index_add_(1, step.keys, p.mT @ x)


#: The last layout :meth:`Tiles.for_batch` built, under "entry": (weak reference to its batch
#: tensor, (num_nodes, chunk_size, causal, batch version), Tiles).
_LAST_TILES: dict = {}
