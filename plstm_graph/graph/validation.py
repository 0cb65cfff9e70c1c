"""Argument checks shared by the structure code, the kernels and the nn modules."""
import torch
from torch import Tensor


def check_num_nodes(num_nodes) -> int:
    if isinstance(num_nodes, Tensor) and num_nodes.numel() == 1:
        num_nodes = int(num_nodes)
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 0:
        raise ValueError(f"num_nodes must be a non-negative int, got {num_nodes!r}")
    return num_nodes


def check_edge_index(edge_index, num_nodes: int, name: str = "edge_index") -> Tensor:
    """Return ``edge_index`` as a ``[2, E]`` long tensor, or raise ``ValueError`` naming ``name``."""
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [2, E], got {type(edge_index).__name__}")
    if edge_index.dtype.is_floating_point or edge_index.dtype.is_complex or edge_index.dtype == torch.bool:
        raise ValueError(f"{name} must have an integer dtype (torch.long), got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, E], got {list(edge_index.shape)}")
    edge_index = edge_index.long()
    if edge_index.numel() > 0:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= num_nodes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} refers to node {bad}, out of range for num_nodes={num_nodes} "
                f"(valid indices are 0..{num_nodes - 1})"
            )
    return edge_index


def check_shape(tensor, name: str, shape: tuple) -> None:
    """Raise ``ValueError`` unless ``tensor`` is a floating tensor of ``shape`` (``None`` = any)."""
    if not isinstance(tensor, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    if tensor.dim() != len(shape) or any(
        want is not None and have != want for have, want in zip(tensor.shape, shape)
    ):
        expected = ", ".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must have shape [{expected}], got {list(tensor.shape)}")


def check_one_of(value, name: str, choices) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (naming ``name``)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def check_positive_int(value, name: str) -> int:
    """Raise ``ValueError`` unless ``value`` is a positive ``int`` (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_probability(value, name: str) -> float:
    """Raise ``ValueError`` unless ``value`` is a number in [0, 1) (a dropout rate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)
