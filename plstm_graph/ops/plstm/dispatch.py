"""``plstm``: argument checks, the ``auto`` choice, then the backend asked for.

Every backend is a function ``fn(q, k, v, source, transition, mark, direct, graph, recompute)``
returning the whole output ``[N, H, V]`` (direct term included). :data:`BACKENDS` maps names to
them; :func:`register_backend` adds one, optionally with a predicate that makes ``auto`` take
it for the graphs it suits (the grid backend does so for grid line graphs).
"""
from functools import reduce
from typing import Callable

import torch
from torch import Tensor

from ...graph.line_graph import LineGraph
from ...graph.validation import check_one_of, check_shape
from .blocks import component_edges
from .levels import plstm_levels
from .naive import plstm_dense, plstm_reference
from .parallel import plstm_parallel

#: ``auto`` takes the parallel form while every graph of the batch has at most this many edges:
#: below it the per-graph solve beats the level sweep (``benchmarks/plstm_bench.py``), above it
#: the ``E^2`` blocks grow too large.
PARALLEL_MAX_EDGES = 256

Backend = Callable[..., Tensor]

INPUT_NAMES = ("q", "k", "v", "source", "transition", "mark", "direct")

#: Computed in float32: the CPU has no half triangular solve, and half sums over long paths
#: lose too much (autocast treats linalg ops and cumulative sums the same way).
HALF_DTYPES = (torch.float16, torch.bfloat16)


def plstm_auto(q, k, v, source, transition, mark, direct, graph: LineGraph,
               recompute: bool = False) -> Tensor:
    """The backend :func:`auto_backend` picks for ``graph``."""
    return BACKENDS[auto_backend(graph)](q, k, v, source, transition, mark, direct, graph,
                                         recompute)


#: name -> backend function; ``"auto"`` dispatches on the graph.
BACKENDS: dict[str, Backend] = {
    "auto": plstm_auto,
    "reference": plstm_reference,
    "levels": plstm_levels,
    "parallel": plstm_parallel,
    "dense": plstm_dense,
}

#: name -> predicate: ``auto`` takes the first backend whose predicate accepts the graph, the
#: latest registered first (a backend of yours comes before the package's own).
AUTO_PREFERENCES: dict[str, Callable[[LineGraph], bool]] = {}


def register_backend(name: str, fn: Backend, auto_for: Callable[[LineGraph], bool] | None = None):
    """Add backend ``name``; ``auto_for(graph)`` True makes ``auto`` choose it for that graph
    (e.g. ``lambda g: isinstance(g, GridLineGraph)``), before any backend registered earlier."""
    if name in BACKENDS:
        raise ValueError(f"backend {name!r} is already registered")
    BACKENDS[name] = fn
    if auto_for is not None:
        earlier = list(AUTO_PREFERENCES.items())
        AUTO_PREFERENCES.clear()
        AUTO_PREFERENCES.update([(name, auto_for), *earlier])


def auto_backend(graph: LineGraph) -> str:
    """A registered preference that accepts ``graph`` (``"compiled"`` for any CPU graph where
    the compiled sweep builds; ``"grid"`` for grid line graphs; ``"mixed"`` for batches with
    graphs on both sides of :data:`PARALLEL_MAX_EDGES` edges), else ``"parallel"`` when every
    graph of the batch has at most that many edges, else ``"levels"``."""
    for name, accepts in AUTO_PREFERENCES.items():
        if accepts(graph):
            return name
    largest = int(component_edges(graph).max()) if graph.num_nodes else 0
    return "parallel" if largest <= PARALLEL_MAX_EDGES else "levels"


def plstm(q: Tensor, k: Tensor, v: Tensor, source: Tensor, transition: Tensor, mark: Tensor,
          direct: Tensor, graph: LineGraph, backend: str = "auto", recompute: bool = False) -> Tensor:
    r"""pLSTM on the line graph of a DAG (SPEC section 1), per head :math:`h`:

    .. math::
        C_e = S_e\, k_{src\,e} v_{src\,e}^\top + \sum_{e' \to e} T_{e' \to e}\, C_{e'}, \qquad
        h_n = \sum_{e:\, dst\,e = n} M_e\, C_e^\top q_n + D_n\, (q_n \cdot k_n)\, v_n

    No scaling is applied (layers scale ``q`` by :math:`K^{-1/2}`).

    Args:
        backend: ``"reference"`` (per-edge loop, the oracle), ``"levels"`` (level-batched with a
            custom backward), ``"parallel"`` (the gating-matrix form per graph, padded blocks of
            similar-size graphs), ``"mixed"`` (``parallel`` on a batch's small graphs, ``levels``
            on its large ones), ``"compiled"`` (the recurrence as a compiled C sweep, CPU only,
            built on first use where a C compiler is), ``"dense"`` (the gating-matrix form over
            the whole batch, ``O(E^2)`` memory, for checks), any backend added by
            :func:`register_backend`, or ``"auto"`` (see :func:`auto_backend`).
        recompute: recompute intermediate states in backward instead of storing them
            (``levels``: the ``[E, H, K, V]`` cell states; ``compiled`` always recomputes them,
            one graph at a time).

    Precision: all inputs share one dtype; float16 and bfloat16 are computed in float32 and
    the output is cast back. Under ``torch.autocast`` the operator acts like autocast's
    float32 ops: inputs of mixed precision are promoted (half to float32) and the output
    keeps that dtype.

    Shapes:
        q, k ``[N, H, K]``; v ``[N, H, V]``; source, mark ``[E, H]``; transition ``[L, H]``;
        direct ``[N, H]``; output ``[N, H, V]``.
    """
    check_one_of(backend, "backend", BACKENDS)
    inputs = (q, k, v, source, transition, mark, direct)
    check_inputs(inputs, graph)
    fn = BACKENDS[backend]
    if torch.is_autocast_enabled(q.device.type):
        dtype = _float32_if_half(reduce(torch.promote_types, (x.dtype for x in inputs)))
        with torch.autocast(q.device.type, enabled=False):
            return fn(*(x.to(dtype) for x in inputs), graph, recompute)
    check_same_dtype(inputs)
    if q.dtype in HALF_DTYPES:
        return fn(*(x.float() for x in inputs), graph, recompute).to(q.dtype)
    return fn(*inputs, graph, recompute)


def check_inputs(inputs, graph: LineGraph) -> None:
    """``(q, k, v, source, transition, mark, direct)`` of the shapes :func:`plstm` documents for
    ``graph``, on one device; a ``ValueError`` names the first argument that is not."""
    if not isinstance(graph, LineGraph):
        raise ValueError(f"graph must be a LineGraph (see prepare_dag), got {type(graph).__name__}")
    q = inputs[0]
    check_shape(q, "q", (graph.num_nodes, None, None))
    heads, key_dim = q.shape[1:]
    shapes = ((graph.num_nodes, heads, key_dim), (graph.num_nodes, heads, None),
              (graph.num_edges, heads), (graph.num_line_edges, heads), (graph.num_edges, heads),
              (graph.num_nodes, heads))
    for name, x, shape in zip(INPUT_NAMES[1:], inputs[1:], shapes):
        check_shape(x, name, shape)
        if x.device != q.device:
            raise ValueError(f"{name} must be on the device of q ({q.device}), got {x.device}")


def check_same_dtype(inputs) -> None:
    """Every input has ``q``'s dtype (outside autocast, :func:`plstm` promotes nothing)."""
    q = inputs[0]
    for name, x in zip(INPUT_NAMES[1:], inputs[1:]):
        if x.dtype != q.dtype:
            raise ValueError(f"{name} must have the dtype of q ({q.dtype}), got {x.dtype}")


def _float32_if_half(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in HALF_DTYPES else dtype
