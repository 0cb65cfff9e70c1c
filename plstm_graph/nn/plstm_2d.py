"""The 2D pLSTM layer of the paper's vision model, on the four corner DAGs of a patch grid."""
import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Parameter

from ..graph.line_graph import MODES
from ..graph.grid import CORNERS, GridLineGraph, grid_line_graph
from ..graph.validation import check_one_of, check_positive_int
from ..ops.plstm import plstm
from .plstm_conv import INITS, reset_projections
from .registry import BlockInputs, register_model
from .residual_block import ResidualBlock
from .vision import ImageModelSpec, corner_pool, grid_shape

# Gate initialisation of the official vision model (SPEC section 8): Source and Mark
# sigmoid(-4), Direct sigmoid(-6), transitions tanh(5 (1 + W x)), i.e. ~1 (saturated) at init.
SOURCE_MARK_BIAS, DIRECT_BIAS, TRANSITION_SCALE = -4.0, -6.0, 5.0

# Node gates per corner and head: P-mode (source, mark, transition, right-vs-down fraction);
# D-mode (source right / down, mark from the left / from above, straight right / down, turn).
GATES = {"P": 4, "D": 7}


def to_corner(x: Tensor, height: int, width: int, corner: str) -> Tensor:
    """Node rows of a batch of ``height x width`` grids (``[B h w, ...]``, row-major) reordered
    so that ``corner`` becomes the top-left one (the map is its own inverse)."""
    grid = x.view(-1, height, width, *x.shape[1:])
    dims = [dim for dim, flip in ((1, corner.startswith("bottom")), (2, corner.endswith("right")))
            if flip]
    return (grid.flip(dims) if dims else grid).reshape(x.shape)


def all_corners(x: Tensor, height: int, width: int) -> Tensor:
    """``x`` in the coordinates of each corner (:func:`to_corner`), corner-major: the four
    sweeps as one batch of ``4 B`` top-left sweeps."""
    return torch.cat([to_corner(x, height, width, corner) for corner in CORNERS])


def _horizontal(graph: GridLineGraph) -> Tensor:
    """``[E]`` whether each edge joins two patches of one row."""
    src, dst = graph.edge_index
    return src // graph.width == dst // graph.width


def _by_direction(horizontal: Tensor, if_horizontal: Tensor, if_vertical: Tensor) -> Tensor:
    return torch.where(horizontal.unsqueeze(-1), if_horizontal, if_vertical)


@lru_cache(maxsize=16)
def sweep_graph(height: int, width: int, count: int) -> GridLineGraph:
    """The full (P-mode) line graph of ``count`` grids swept from the top-left corner, cached
    per shape (the kernels derive their layouts from it once)."""
    return grid_line_graph(height, width, "top-left", "P", count)


class PLSTM2DConv(torch.nn.Module):
    r"""2D pLSTM (Pöppel et al., arXiv 2506.11997, section 4 and the official
    ``plstm.torch.plstm_2d_layer.pLSTM2DLayer``) on a batch of patch grids.

    One layer averages four pLSTMs over the grid, one per corner the sweep starts from, that
    share queries, keys and values (:math:`q_n = W_q x_n / \sqrt{K}`, :math:`k_n = W_k x_n`,
    :math:`v_n = W_v x_n`) and the Direct gate :math:`D_n = \sigma(W_D x_n)`. Each corner's
    sweep is the grid DAG with edges pointing away from it; in its coordinates a node
    :math:`n` has a horizontal (:math:`\rightarrow`) and a vertical (:math:`\downarrow`) input
    and output edge, and its gates (per corner and head, from :math:`x_n`) are

    * **P-mode** (directional propagation): a learned fraction
      :math:`o_n = \sigma(W_o x_n)` splits what :math:`n` passes on between its two outputs,
      so the flow is conserved: sources :math:`\sigma(W_S x_n)\,(o_n, 1 - o_n)`,
      transitions from either input :math:`\tau_n (o_n, 1 - o_n)` with
      :math:`\tau_n = \tanh(5 (1 + W_T x_n))`, one mark :math:`\sigma(W_M x_n)`;
    * **D-mode** (diffusive, on a multitree): sources :math:`S^\rightarrow_n, S^\downarrow_n`,
      marks :math:`M^\rightarrow_n, M^\downarrow_n` (by the input they read) and transitions
      :math:`\tanh(5 (1 + W x_n))` for going straight on horizontally, vertically, and for
      turning from horizontal to vertical; the vertical-to-horizontal turn is absent, so
      exactly one path joins two patches (right, then down).

    .. math::
        h_n = \frac{1}{4} \sum_{c} \mathrm{pLSTM}_c(q, k, v, S_c, T_c, M_c, D)_n, \qquad
        y_n = W_O \big\|_h \mathrm{RMSNorm}_h(h_n)

    (each corner's pLSTM includes the Direct term, so the mean counts it once). The four
    corners run as one batch: every corner's grids are flipped into top-left coordinates
    (:func:`to_corner`) and swept together by :func:`~plstm_graph.plstm` on
    :func:`~plstm_graph.graph.grid.grid_line_graph`.

    Choices and their sources (the official code unless said otherwise):

    * four corner orientations averaged, q / k / v and Direct shared, gates per orientation
      and head: ``pLSTM2DLayer.forward`` (``_unflatten_orientations``, ``torch.mean`` over
      orientations);
    * P-mode split by a learned orientation fraction, zero-initialised (:math:`o = 1/2`):
      ``pLSTM2DLayer`` ``orientation_weight`` / ``orientation_bias``. The official code takes
      ``s_d = 1 - o S`` and ``t_down = 1 - o T``; here both outputs share :math:`S` and
      :math:`\tau` (``(1 - o) S``, ``(1 - o) tau``), which keeps every node's outflow at most 1;
    * D-mode gates ``source_r / source_d``, ``mark_l / mark_u``, ``transition_r / _d / _rd``
      and a single turn direction (``dmode_chirality``): ``pLSTM2DLayer.__init__``. This is
      the official multitree (straight transitions plus one turn, SPEC section 8), not the
      comb that SPEC's generic pruning gives a grid (:mod:`plstm_graph.graph.grid`);
    * gate biases (Source / Mark -4, Direct -6, saturated transitions): SPEC section 8;
    * per-head RMSNorm after the mean and an output projection (the official ``mhnorm`` is
      applied per orientation before the mean);
    * ``projections="official"`` (the default): q / k / v and the output projection with
      biases (0) and weights :math:`\mathcal N(0, 2 / (5\, \text{fan\_in}))` (``QueryLayer`` /
      ``KeyLayer`` / ``ValueLayer`` / ``outprojection``: ``SmallInitConfig``), :math:`q`
      scaled by :math:`1/\sqrt{K}` in the kernel (``pLSTM2D_fwbw``'s ``QK_scale``). With
      ``"default"`` (the graph layers' default: std 0.02, no biases) the layer's pre-norm
      output at initialisation is about 1000 times smaller (5e-6 RMS on APE images, below the
      norm's :math:`\sqrt{\epsilon}`), so the layer starts out silent.

    Args:
        channels: feature size (in and out).
        heads: heads :math:`H` (``channels`` divisible by it).
        mode: ``"P"`` or ``"D"``.
        backend: pLSTM kernel backend (see :func:`~plstm_graph.plstm`).
        projections: ``"official"`` (the official code's small init with biases, above) or
            ``"default"`` (the graph layers' default: weights normal with std 0.02, no biases).

    Shapes:
        - **input:** node features :math:`(N, F)`, positions ``pos`` :math:`(N, 2)` of
          ``num_graphs`` equal grids, nodes row-major within each grid
        - **output:** :math:`(N, F)`
    """

    def __init__(self, channels: int, heads: int = 4, mode: str = "P", backend: str = "auto",
                 projections: str = "official"):
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_int(heads, "heads")
        check_one_of(mode, "mode", MODES)
        check_one_of(projections, "projections", INITS)
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.channels, self.heads, self.mode, self.backend = channels, heads, mode, backend
        self.projections = projections
        self.head_dim = channels // heads
        bias = projections == "official"
        self.lin_query = Linear(channels, channels, bias=bias)
        self.lin_key = Linear(channels, channels, bias=bias)
        self.lin_value = Linear(channels, channels, bias=bias)
        self.lin_gates = Linear(channels, len(CORNERS) * heads * GATES[mode])
        self.lin_direct = Linear(channels, heads)
        self.norm_weight = Parameter(torch.empty(heads, self.head_dim))
        self.lin_out = Linear(channels, channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        reset_projections((self.lin_query, self.lin_key, self.lin_value, self.lin_out),
                          self.projections)
        torch.nn.init.normal_(self.lin_gates.weight, std=0.02)
        bias = self.lin_gates.bias.data.view(len(CORNERS), self.heads, GATES[self.mode])
        bias.zero_()  # transitions and the P-mode fraction
        bias[..., [0, 1] if self.mode == "P" else [0, 1, 2, 3]] = SOURCE_MARK_BIAS
        torch.nn.init.zeros_(self.lin_direct.weight)
        torch.nn.init.constant_(self.lin_direct.bias, DIRECT_BIAS)
        torch.nn.init.ones_(self.norm_weight)

    def edge_gates(self, gates: Tensor, graph: GridLineGraph):
        """Source and Mark ``[E, H]`` and Transition ``[L, H]`` on the top-left sweep
        ``graph`` from node gate pre-activations ``gates`` ``[N, H, G]`` (corner coordinates)."""
        src, dst = graph.edge_index
        e_in, e_out = graph.line_index
        across = graph.cached("plstm2d_horizontal", _horizontal)
        node, in_across, out_across = dst[e_in], across[e_in], across[e_out]
        if self.mode == "P":
            fraction = torch.sigmoid(gates[..., 3])
            split = _by_direction(across, fraction[src], 1 - fraction[src])
            source = torch.sigmoid(gates[src, :, 0]) * split
            mark = torch.sigmoid(gates[dst, :, 1])
            tau = torch.tanh(TRANSITION_SCALE * (1 + gates[node, :, 2]))
            return source, tau * _by_direction(out_across, fraction[node], 1 - fraction[node]), mark
        source = torch.sigmoid(_by_direction(across, gates[src, :, 0], gates[src, :, 1]))
        mark = torch.sigmoid(_by_direction(across, gates[dst, :, 2], gates[dst, :, 3]))
        straight = _by_direction(out_across, gates[node, :, 4], gates[node, :, 5])
        raw = _by_direction(in_across == out_across, straight, gates[node, :, 6])
        # The vertical -> horizontal turn is not part of the multitree.
        kept = (in_across | ~out_across).unsqueeze(-1)
        return source, torch.tanh(TRANSITION_SCALE * (1 + raw)) * kept, mark

    def forward(self, x: Tensor, pos: Tensor, num_graphs: int = 1) -> Tensor:
        height, width = grid_shape(pos, num_graphs)
        num_nodes = x.size(0)
        shape = (num_nodes, self.heads, self.head_dim)
        q = self.lin_query(x).view(shape) / math.sqrt(self.head_dim)
        k, v = self.lin_key(x).view(shape), self.lin_value(x).view(shape)
        direct = torch.sigmoid(self.lin_direct(x))
        gates = self.lin_gates(x).view(num_nodes, len(CORNERS), self.heads, GATES[self.mode])

        # Each corner's gates in its own coordinates; q, k, v and Direct shared by all four.
        per_corner = torch.cat([to_corner(gates[:, c], height, width, corner)
                                for c, corner in enumerate(CORNERS)])
        graph = sweep_graph(height, width, len(CORNERS) * num_graphs)
        source, transition, mark = self.edge_gates(per_corner, graph)
        q, k, v, direct = (all_corners(t, height, width) for t in (q, k, v, direct))
        h = plstm(q, k, v, source, transition, mark, direct, graph, backend=self.backend)
        h = sum(to_corner(part, height, width, corner)
                for part, corner in zip(h.split(num_nodes), CORNERS)) / len(CORNERS)
        h = F.rms_norm(h, (self.head_dim,), eps=1e-5) * self.norm_weight
        return self.lin_out(h.reshape(num_nodes, -1))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, heads={self.heads}, "
                f"mode={self.mode!r}, projections={self.projections!r})")


class PLSTM2DBlock(ResidualBlock):
    r"""``x + PLSTM2DConv(RMSNorm(x))`` followed by ``x + MLP(RMSNorm(x))`` (the official
    vision block: each 2D layer with its own MLP).

    Shapes:
        - **input:** :math:`(N, F)`, ``pos`` :math:`(N, 2)`, number of grids
        - **output:** :math:`(N, F)`
    """

    def __init__(self, channels: int, heads: int = 4, mode: str = "P", mlp_ratio: int = 4,
                 backend: str = "auto", projections: str = "official"):
        super().__init__(PLSTM2DConv(channels, heads, mode, backend, projections), channels,
                         mlp_ratio)

    @property
    def conv(self) -> PLSTM2DConv:
        return self.mixer


@register_model
class PLSTM2D(ImageModelSpec):
    """The paper's 2D vision pLSTM: P- and D-mode 2D layers alternating (a pLSTM block is one
    of each, official ``plstm_vis_t``), no position embedding, max pooling over the patches.

    No position embedding (the official model has a learned one, bicubically interpolated to
    larger grids; ``position_embedding="learned-sincos"`` gives it) was chosen on APE's
    validation images (README, APE round 12): the corner sweeps already carry where one patch
    lies relative to another, and a table stretched to a larger grid tells the model wrong
    distances. Without it ``plstm-2d``'s validation accuracy at 128 px ended at 0.81-0.86 over
    three seeds, with the interpolated table at 0.51-0.78 (seed 0 peaked at 0.79 and fell to
    0.66 as it fitted 64 px).

    Max pooling (the image models' default ``pooling``) was chosen on APE's validation images
    (README, APE round 11): with the official corner pooling ``plstm-2d`` stayed at chance for
    8,000 steps of 128 images, with mean pooling it left chance at step 5,500 and predicted one
    class on twice larger images; with max pooling it was at 0.83 at 64 px and 0.78 at 128 px
    by step 3,000. A maximum over patches does not change when a larger image adds empty ones;
    a mean is diluted by them.

    Args (``model_options``, besides :class:`~plstm_graph.nn.vision.ImageModelSpec`'s):
        projections: initialisation of the layers' q / k / v / output projections
            (:class:`PLSTM2DConv`).
        corner_pooling: pool the four corner patches, where the sweeps end (the official
            model's pooling); ``False`` (default): the run's ``pooling`` over all patches.
    """

    name = "plstm-2d"
    description = "2D pLSTM on patch grids (images): P / D layers over the four corner sweeps"

    def __init__(self, grid: int = 8, position_embedding: str = "none",
                 projections: str = "official", corner_pooling: bool = False):
        super().__init__(grid, position_embedding)
        check_one_of(projections, "projections", INITS)
        check_one_of(corner_pooling, "corner_pooling", (True, False))
        self.projections, self.corner_pooling = projections, corner_pooling

    def layer_plan(self, num_layers: int) -> list:
        return ["P" if i % 2 == 0 else "D" for i in range(num_layers)]

    def init_block(self, hidden, heads, layer, edge_dim):
        return PLSTM2DBlock(hidden, heads, mode=layer, projections=self.projections)

    def call_block(self, block, x, inputs: BlockInputs):
        return block(x, inputs.data.pos, inputs.num_graphs)

    def pool(self, x: Tensor, inputs: BlockInputs) -> Tensor | None:
        return corner_pool(x, inputs.data.pos, inputs.num_graphs) if self.corner_pooling else None


@register_model
class PLSTM2DDiffusive(PLSTM2D):
    """The D-mode-only ablation (paper: best extrapolation, 0.828, and learns earliest)."""

    name = "plstm-2d-d"
    description = "2D pLSTM on patch grids with D-mode layers only"

    def layer_plan(self, num_layers: int) -> list:
        return ["D"] * num_layers
