"""Input encoders of the graph-level models: node and edge features, and the degree encoding."""
import math

import torch
from torch import Tensor
from torch.nn import Embedding, Linear
from torch_geometric.utils import degree

FEATURES = ("ogb", "onehot", "tokens")


class DegreeEncoding(torch.nn.Module):
    r"""A sinusoidal encoding (base 10000) of each node's neighbour count, added to the encoded
    node features (SPEC section 6):

    .. math::
        p_{n, 2i} = \sin(d_n / 10000^{2i / F}), \qquad p_{n, 2i+1} = \cos(d_n / 10000^{2i / F})

    with :math:`d_n` the number of edges entering :math:`n` (its neighbour count, since PyG
    stores undirected graphs with both directions).

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)` and the number of nodes :math:`N`
        - **output:** :math:`(N, F)`
    """

    def __init__(self, channels: int, base: float = 10000.0):
        super().__init__()
        if channels % 2:
            raise ValueError(f"channels must be even for a sin/cos encoding, got {channels}")
        self.channels, self.base = channels, base
        exponent = torch.arange(0, channels, 2, dtype=torch.float) / channels
        self.register_buffer("inv_freq", base ** -exponent, persistent=False)

    def forward(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        angle = degree(edge_index[1], num_nodes).unsqueeze(-1) * self.inv_freq
        return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, base={self.base:g})"


class FeatureEncoder(torch.nn.Module):
    r"""Embeds node (or edge) input features into ``channels``: OGB's ``AtomEncoder`` /
    ``BondEncoder`` for integer OGB molecule features, a ``Linear`` layer for float (one-hot)
    features, a learned ``Embedding`` for token ids (e.g. the words at a parse tree's leaves).

    Args:
        channels: output size.
        features: ``"ogb"``, ``"onehot"`` or ``"tokens"``.
        in_channels: input size (``"onehot"``), or vocabulary size (``"tokens"``: ids
            ``0 .. in_channels - 1``).
        kind: ``"node"`` or ``"edge"`` (``"ogb"`` only: atom or bond vocabulary).

    Shapes:
        - **input:** :math:`(N, F_{in})` (long for ``"ogb"``, float for ``"onehot"``)
        - **output:** :math:`(N, F)`
    """

    def __init__(self, channels: int, features: str, in_channels: int | None = None,
                 kind: str = "node"):
        super().__init__()
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        if kind not in ("node", "edge"):
            raise ValueError(f"kind must be 'node' or 'edge', got {kind!r}")
        self.channels, self.features, self.kind = channels, features, kind
        if features == "ogb":
            from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
            self.encoder = (AtomEncoder if kind == "node" else BondEncoder)(channels)
        else:
            if not in_channels:
                raise ValueError(f"in_channels must be a positive int for {features!r} features, "
                                 f"got {in_channels!r}")
            self.encoder = (Linear(in_channels, channels) if features == "onehot"
                            else Embedding(in_channels, channels))

    def reset_parameters(self):
        if isinstance(self.encoder, (Linear, Embedding)):
            self.encoder.reset_parameters()
        else:
            for embedding in self.encoder.modules():
                if isinstance(embedding, torch.nn.Embedding):
                    torch.nn.init.xavier_uniform_(embedding.weight.data)

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.encoder, Embedding):
            return self.encoder(x.long().view(-1))
        # [rows, features]; not view(rows, -1), which fails on a batch without edges (0 rows).
        x = x.unsqueeze(-1) if x.dim() == 1 else x.flatten(1)
        if isinstance(self.encoder, Linear):
            return self.encoder(x.float())
        return self.encoder(x.long())

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, features={self.features!r}, kind={self.kind!r})"
