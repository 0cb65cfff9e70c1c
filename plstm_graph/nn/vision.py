"""What the image models share: the patch grid of a batch and its position embedding.

Images arrive as PyG batches of patch-grid graphs (see :mod:`plstm_graph.data.ape`): every
graph of a batch is one ``height x width`` grid, node ``r * width + c`` of each graph holding the
patch in row ``r`` and column ``c``, and ``pos`` its ``(row, col)``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from ..graph.validation import check_one_of, check_positive_int
from .registry import BlockInputs, ModelSpec


def grid_shape(pos: Tensor, num_graphs: int) -> tuple[int, int]:
    """``(height, width)`` of the equal grids a batch with node positions ``pos`` holds,
    checking that the nodes are ``num_graphs`` full grids, each in row-major order."""
    if pos is None or pos.dim() != 2 or pos.size(1) != 2 or not pos.numel():
        raise ValueError("data.pos must hold the [N, 2] (row, col) position of every patch")
    height, width = int(pos[:, 0].max()) + 1, int(pos[:, 1].max()) + 1
    order = torch.arange(pos.size(0), device=pos.device) % (height * width)
    row_major = torch.equal(pos[:, 0] * width + pos[:, 1], order)
    if pos.size(0) != num_graphs * height * width or not row_major:
        raise ValueError(f"data.pos: expected {num_graphs} grids of {height} x {width} patches "
                         f"in row-major order ({num_graphs * height * width} nodes), got "
                         f"{pos.size(0)} nodes")
    return height, width


def corner_pool(x: Tensor, pos: Tensor, num_graphs: int) -> Tensor:
    """Mean of each grid's four corner patches, ``[num_graphs, F]``: the corners are where the
    four directional sweeps of a 2D pLSTM end (the official vision model's corner pooling)."""
    height, width = grid_shape(pos, num_graphs)
    grid = x.view(num_graphs, height, width, -1)
    corners = grid[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    return corners.mean(dim=1)


def sincos_2d(height: int, width: int, channels: int) -> Tensor:
    """The 2D sine-cosine position embedding of MAE / DeiT III: half the channels encode the
    row, half the column, each as sines and cosines of geometric frequencies. ``[h w, channels]``."""
    if channels % 4:
        raise ValueError(f"channels must be divisible by 4 for a 2D sine-cosine embedding, "
                         f"got {channels}")
    freq = 1.0 / 10000 ** (torch.arange(channels // 4, dtype=torch.float) / (channels // 4))
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float),
                                torch.arange(width, dtype=torch.float), indexing="ij")
    parts = [torch.outer(axis.reshape(-1), freq) for axis in (rows, cols)]
    return torch.cat([f(part) for part in parts for f in (torch.sin, torch.cos)], dim=1)


class GridPositionEmbedding(torch.nn.Module):
    r"""Adds a position embedding to every patch of a batch of patch grids.

    * ``"learned"``: a ``grid x grid`` table, bicubically interpolated to other grid sizes
      (what ViTs do for larger images, and the official pLSTM vision model, SPEC section 8),
      initialised as ViTs do (normal, std 0.02);
    * ``"learned-sincos"``: the same table initialised with the 2D sine-cosine embedding. At
      std 0.02 the table starts far below the patch embedding of an APE image, and the models
      took hundreds of steps to use positions at all (docs/grids.md); this one starts at unit
      scale;
    * ``"sincos"``: the fixed 2D sine-cosine embedding, defined for any grid;
    * ``"none"``: nothing (the paper's no-position-embedding ablation).

    Args:
        channels: feature size.
        grid: side of the grid the learned table is trained on.
        kind: ``"learned"``, ``"learned-sincos"``, ``"sincos"`` or ``"none"``.

    Shapes:
        - **input:** node features :math:`(N, F)`, ``pos`` :math:`(N, 2)`, number of grids
        - **output:** :math:`(N, F)`
    """

    KINDS = ("learned", "learned-sincos", "sincos", "none")

    def __init__(self, channels: int, grid: int = 8, kind: str = "learned"):
        super().__init__()
        check_one_of(kind, "kind", self.KINDS)
        self.channels, self.grid, self.kind = check_positive_int(channels, "channels"), \
            check_positive_int(grid, "grid"), kind
        if kind == "learned-sincos" and channels % 4:
            raise ValueError(f"channels must be divisible by 4 for kind='learned-sincos', got {channels}")
        learned = kind.startswith("learned")
        self.weight = Parameter(torch.empty(grid * grid, channels)) if learned else None
        self.reset_parameters()

    def reset_parameters(self):
        if self.kind == "learned":
            torch.nn.init.trunc_normal_(self.weight, std=0.02)
        elif self.kind == "learned-sincos":
            with torch.no_grad():
                self.weight.copy_(sincos_2d(self.grid, self.grid, self.channels))

    def table(self, height: int, width: int) -> Tensor:
        """The ``[height * width, channels]`` embedding of a ``height x width`` grid."""
        if self.kind == "sincos":
            return sincos_2d(height, width, self.channels)
        table = self.weight
        if (height, width) != (self.grid, self.grid):
            image = table.T.reshape(1, self.channels, self.grid, self.grid)
            image = F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False)
            table = image.reshape(self.channels, height * width).T
        return table

    def forward(self, x: Tensor, pos: Tensor, num_graphs: int) -> Tensor:
        if self.kind == "none":
            return x
        height, width = grid_shape(pos, num_graphs)
        return x + self.table(height, width).to(x.dtype)[pos[:, 0] * width + pos[:, 1]]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, grid={self.grid}, kind={self.kind!r})"


class ImageModelSpec(ModelSpec):
    """Models of patch grids (registered by subclasses): a position embedding added after the
    patch (node) encoder.

    Args (``model_options``):
        grid: patches per side of the training grid (the learned position table's size;
            ``size / patch`` of the training images).
        position_embedding: ``"learned"``, ``"learned-sincos"``, ``"sincos"`` or ``"none"``
            (:class:`GridPositionEmbedding`); ``"learned-sincos"`` for the ViT, which without
            positions cannot tell one patch's place from another's, ``"none"`` for the
            pLSTMs (see :class:`~plstm_graph.nn.plstm_2d.PLSTM2D`).
    """

    supports_edge_attr = False
    # Chosen on APE's validation images for both the pLSTM and the ViT (README, APE round 11):
    # a maximum over patches does not change when a larger image adds empty ones, a mean is
    # diluted by them; with mean pooling neither model left chance as early, nor extrapolated.
    default_pooling = "max"

    def __init__(self, grid: int = 8, position_embedding: str = "learned-sincos"):
        check_one_of(position_embedding, "position_embedding", GridPositionEmbedding.KINDS)
        self.grid = check_positive_int(grid, "grid")
        self.position_embedding = position_embedding

    def init_extra(self, hidden: int) -> torch.nn.Module:
        return GridPositionEmbedding(hidden, self.grid, self.position_embedding)

    def encode(self, extra, x: Tensor, inputs: BlockInputs) -> Tensor:
        return extra(x, inputs.data.pos, inputs.num_graphs)
