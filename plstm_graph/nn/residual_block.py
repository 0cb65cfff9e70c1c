"""The pre-norm residual block every model in the project is made of."""
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import GELU, Linear, RMSNorm, Sequential

from ..graph.validation import check_probability
from .local_global import parts


def mlp(channels: int, ratio: int = 4) -> Sequential:
    """``Linear(d, ratio d) -> GELU -> Linear(ratio d, d)``, the block's feed-forward part."""
    return Sequential(Linear(channels, ratio * channels), GELU(), Linear(ratio * channels, channels))


class ResidualBlock(torch.nn.Module):
    r"""``x + mixer(RMSNorm(x), ...)`` followed by ``x + MLP(RMSNorm(x))`` (SPEC section 6).

    The mixing layer (pLSTM, a message-passing layer, attention) is the only difference
    between the models compared, so they share everything else.

    Args:
        mixer: a module mapping ``(N, channels)`` node features (and whatever else ``forward``
            is given) to ``(N, channels)``.
        channels: feature size.
        mlp_ratio: hidden size of the MLP, in multiples of ``channels``.
        dropout: dropout on the output of each residual branch while training.

    Shapes:
        - **input:** :math:`(N, F)` and the mixer's other arguments
        - **output:** :math:`(N, F)`
    """

    def __init__(self, mixer: torch.nn.Module, channels: int, mlp_ratio: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        check_probability(dropout, "`dropout`")  # named as the blocks' other errors name theirs
        self.mixer, self.dropout = mixer, dropout
        self.norm1, self.norm2 = RMSNorm(channels, eps=1e-5), RMSNorm(channels, eps=1e-5)
        self.mlp = mlp(channels, mlp_ratio)

    @property
    def local(self) -> torch.nn.Module | None:
        """The local layer beside the mixing layer (a
        :class:`~plstm_graph.nn.local_global.LocalGlobalMixer`'s), or ``None``."""
        return parts(self.mixer)[1]

    def reset_parameters(self):
        self.mixer.reset_parameters()
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        for layer in self.mlp:
            if isinstance(layer, Linear):
                layer.reset_parameters()

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        x = x + F.dropout(self.mixer(self.norm1(x), *args, **kwargs), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.mixer})"
