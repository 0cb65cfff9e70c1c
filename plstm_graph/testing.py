"""Reusable graph families and assertion helpers for tests and benchmarks."""
import itertools

import torch
from torch import Tensor

from .ops.plstm.dispatch import INPUT_NAMES

# ---------------------------------------------------------------------------------------------
# Graph families: (edge_index, num_nodes). "Directed" ones are DAGs for orientation="given".
# ---------------------------------------------------------------------------------------------


def chain(n: int) -> tuple[Tensor, int]:
    """``0 -> 1 -> ... -> n-1``."""
    nodes = torch.arange(max(n - 1, 0))
    return torch.stack([nodes, nodes + 1]), n


def star(n: int) -> tuple[Tensor, int]:
    """Centre 0 pointing to ``n - 1`` leaves."""
    leaves = torch.arange(1, n)
    return torch.stack([torch.zeros_like(leaves), leaves]), n


def random_tree(n: int, generator: torch.Generator | None = None) -> tuple[Tensor, int]:
    """Every node ``i > 0`` hangs below a uniformly drawn earlier node."""
    children = torch.arange(1, max(n, 1))
    parents = (torch.rand(children.numel(), generator=generator) * children).long()
    return torch.stack([parents, children]), n


def grid_dag(height: int, width: int) -> tuple[Tensor, int]:
    """2D grid, edges pointing down and right (node ``i * width + j``)."""
    ids = torch.arange(height * width).view(height, width)
    down = torch.stack([ids[:-1].reshape(-1), ids[1:].reshape(-1)])
    right = torch.stack([ids[:, :-1].reshape(-1), ids[:, 1:].reshape(-1)])
    return torch.cat([down, right], dim=1), height * width


def dense_dag(n: int) -> tuple[Tensor, int]:
    """Every pair ``i < j`` is an edge ``i -> j``."""
    pairs = torch.tensor(list(itertools.combinations(range(n), 2)), dtype=torch.long)
    return pairs.t().reshape(2, -1), n


def random_dag(n: int, num_edges: int, generator: torch.Generator | None = None):
    """Random pairs oriented from lower to higher index (duplicates possible)."""
    pairs = torch.randint(0, n, (2, num_edges), generator=generator)
    pairs = pairs[:, pairs[0] != pairs[1]]
    return torch.stack([pairs.min(0).values, pairs.max(0).values]), n


def disjoint_union(graphs) -> tuple[Tensor, int]:
    """One batch of ``(edge_index, num_nodes)`` graphs, node ids offset as PyG batches them."""
    parts, offset = [], 0
    for edge_index, num_nodes in graphs:
        parts.append(edge_index + offset)
        offset += num_nodes
    return torch.cat(parts, dim=1) if parts else torch.zeros(2, 0, dtype=torch.long), offset


def molecule(smiles: str) -> tuple[Tensor, int]:
    """A real molecule's undirected bond graph (both directions, as PyG stores it)."""
    from ogb.utils import smiles2graph

    graph = smiles2graph(smiles)
    return torch.from_numpy(graph["edge_index"]).long(), int(graph["num_nodes"])


#: Small molecules with rings (fused, bridged, spiro) for structure and kernel tests.
RING_SMILES = (
    "c1ccccc1",  # benzene
    "c1ccc2ccccc2c1",  # naphthalene (fused)
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "C1CC2CCC1C2",  # norbornane (bridged)
    "C1CCC2(CC1)CCCC2",  # spiro
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine
)

# ---------------------------------------------------------------------------------------------
# Assertion helpers
# ---------------------------------------------------------------------------------------------


def random_plstm_inputs(graph, heads: int, key_dim: int, value_dim: int,
                        dtype=torch.float64, generator: torch.Generator | None = None) -> list:
    """Random ``q, k, v, source, transition, mark, direct`` within the gates' ranges; the
    transitions of each line node sum to at most 1 in absolute value (P-mode's bound)."""
    n, e, lines = graph.num_nodes, graph.num_edges, graph.num_line_edges

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype)

    def unit(*shape):
        return torch.rand(*shape, generator=generator, dtype=dtype)

    from .ops.plstm.gates import p_mode_transition

    transition = p_mode_transition(rand(lines, heads), graph)
    return [rand(n, heads, key_dim), rand(n, heads, key_dim), rand(n, heads, value_dim),
            unit(e, heads), transition, unit(e, heads), unit(n, heads)]


def outputs_and_grads(fn, inputs: list, cotangent: Tensor | None = None):
    """``fn(*inputs)`` and the gradient of ``<fn(*inputs), cotangent>`` w.r.t. every input."""
    inputs = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*inputs)
    if cotangent is None:
        cotangent = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    grads = torch.autograd.grad(out, inputs, cotangent, allow_unused=True)
    return out.detach(), [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


def assert_same_outputs_and_grads(fn, oracle, inputs: list, names=None, atol=1e-10, rtol=0.0):
    """Outputs AND every input gradient of ``fn`` equal those of ``oracle``."""
    out, grads = outputs_and_grads(fn, inputs)
    want_out, want_grads = outputs_and_grads(oracle, inputs)
    torch.testing.assert_close(out, want_out, atol=atol, rtol=rtol, msg=lambda m: f"output: {m}")
    names = names or [f"input {i}" for i in range(len(inputs))]
    for name, got, want in zip(names, grads, want_grads):
        torch.testing.assert_close(got, want, atol=atol, rtol=rtol,
                                   msg=lambda m, name=name: f"gradient of {name}: {m}")


PLSTM_INPUT_NAMES = INPUT_NAMES


def assert_plstm_matches_reference(graph, backend: str, heads=2, key_dim=3, value_dim=4,
                                   atol=1e-10, seed=0, **kwargs):
    """``plstm(..., backend)`` equals the per-edge reference in float64, outputs and all seven
    gradients."""
    from .ops.plstm import plstm

    generator = torch.Generator().manual_seed(seed)
    inputs = random_plstm_inputs(graph, heads, key_dim, value_dim, generator=generator)
    assert_same_outputs_and_grads(
        lambda *xs: plstm(*xs, graph, backend=backend, **kwargs),
        lambda *xs: plstm(*xs, graph, backend="reference"),
        inputs, names=PLSTM_INPUT_NAMES, atol=atol)


def path_counts(line_index: Tensor, num_line_nodes: int) -> Tensor:
    """``counts[a, b]`` = number of directed paths (length >= 1) from ``a`` to ``b``."""
    adjacency = torch.zeros(num_line_nodes, num_line_nodes, dtype=torch.float64)
    adjacency.index_put_((line_index[0], line_index[1]), torch.ones(line_index.size(1),
                         dtype=torch.float64), accumulate=True)
    counts, power = torch.zeros_like(adjacency), adjacency
    while bool(power.any()):  # the line graph of a DAG is nilpotent
        counts += power
        power = power @ adjacency
    return counts


def assert_multitree(line_index: Tensor, num_line_nodes: int):
    """At most one directed path between any two line nodes."""
    counts = path_counts(line_index, num_line_nodes)
    if bool((counts > 1).any()):
        a, b = (counts > 1).nonzero()[0].tolist()
        raise AssertionError(f"{int(counts[a, b])} paths from line node {a} to {b}: not a multitree")


# ---------------------------------------------------------------------------------------------
# Attention over batched graphs
# ---------------------------------------------------------------------------------------------


def batch_of_sizes(sizes, device=None) -> Tensor:
    """PyG ``batch`` vector of graphs with ``sizes`` nodes; an empty graph is a missing id."""
    sizes = torch.as_tensor(sizes, dtype=torch.long, device=device)
    return torch.repeat_interleave(torch.arange(sizes.numel(), device=device), sizes)


def graphwise_sdpa(q: Tensor, k: Tensor, v: Tensor, batch: Tensor | None = None,
                   causal: bool = False, scale: float | None = None) -> Tensor:
    """Oracle for ``einsum_attention``: ``scaled_dot_product_attention`` run graph by graph
    on ``[N, H, D]`` tensors in PyG node order."""
    from torch.nn.functional import scaled_dot_product_attention

    if batch is None:
        batch = torch.zeros(q.size(0), dtype=torch.long, device=q.device)
    outs = []
    for nodes in torch.split(torch.arange(q.size(0)), torch.bincount(batch).tolist()):
        if nodes.numel():
            q_g, k_g, v_g = (x[nodes].transpose(0, 1) for x in (q, k, v))  # [H, n, D]
            outs.append(scaled_dot_product_attention(q_g, k_g, v_g, is_causal=causal,
                                                     scale=scale).transpose(0, 1))
    return torch.cat(outs) if outs else v * 0  # no node at all
