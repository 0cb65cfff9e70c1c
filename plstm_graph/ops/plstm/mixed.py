"""Batches that mix small and large graphs: ``parallel`` for the small ones, ``levels`` for
the large ones, each on its own part of the batch.

A batch is a disjoint union of components, so pLSTM runs on any partition of its components
independently and the outputs are put back together row by row. ``parallel`` pays ``E^2`` per
component and ``levels`` a fixed cost per level of the whole batch; one large component (a
PROTEINS graph of several hundred edges in a batch of 64) would otherwise send the whole batch
to the level sweep. Here the small components (at most ``PARALLEL_MAX_EDGES`` edges, the limit
``auto`` uses) take the parallel form, the others the level sweep, whose levels and per-level
work are then those of the large components only.
"""
from dataclasses import dataclass

import torch
from torch import Tensor

from ...graph.line_graph import LineGraph
from . import dispatch
from .blocks import component_edges
from .levels import plstm_levels
from .parallel import plstm_parallel


@dataclass(frozen=True, eq=False)
class Part:
    """The components of a batch one backend runs: their ``nodes``, ``edges`` and ``lines``
    (line edges) as rows of the batch, and ``graph``, the same components relabelled ``0..``."""

    nodes: Tensor
    edges: Tensor
    lines: Tensor
    graph: LineGraph


@dataclass(frozen=True, eq=False)
class Split:
    """``small`` (every component with at most ``PARALLEL_MAX_EDGES`` edges, edgeless nodes
    included) and ``large``; ``order`` maps the rows of ``cat(out_small, out_large)`` back to
    the batch."""

    small: Part
    large: Part
    order: Tensor


def _new_ids(selected: Tensor, size: int) -> Tensor:
    """``[size]``: the new index of each selected row, ``-1`` elsewhere."""
    ids = torch.full((size,), -1, dtype=torch.long, device=selected.device)
    ids[selected] = torch.arange(len(selected), device=selected.device)
    return ids


def part(graph: LineGraph, node_mask: Tensor) -> Part:
    """The components whose nodes ``node_mask`` selects, as a :class:`Part`."""
    nodes = torch.nonzero(node_mask).flatten()
    edge_mask = node_mask[graph.edge_index[0]]
    edges = torch.nonzero(edge_mask).flatten()
    lines = torch.nonzero(edge_mask[graph.line_index[0]]).flatten()
    # A component's levels do not depend on the others: they are kept as they are.
    node_id, edge_id = _new_ids(nodes, graph.num_nodes), _new_ids(edges, graph.num_edges)
    sub = LineGraph(node_id[graph.edge_index[:, edges]], graph.edge_id[edges],
                    edge_id[graph.line_index[:, lines]], graph.edge_level[edges], len(nodes),
                    graph.mode)
    return Part(nodes, edges, lines, sub)


def split_of(graph: LineGraph) -> Split:
    """The :class:`Split` of ``graph`` at ``PARALLEL_MAX_EDGES``, computed once per graph and
    limit."""
    max_edges = dispatch.PARALLEL_MAX_EDGES

    def build(g):
        small = component_edges(g) <= max_edges
        parts = part(g, small), part(g, ~small)
        order = torch.argsort(torch.cat([parts[0].nodes, parts[1].nodes]))
        return Split(*parts, order)
    return graph.cached(f"split/{max_edges}", build)


def is_mixed(graph: LineGraph) -> bool:
    """Whether ``graph`` holds both a component with edges that ``parallel`` takes and one that
    is too large for it (then ``auto`` picks ``"mixed"``)."""
    sizes = component_edges(graph)
    large = sizes > dispatch.PARALLEL_MAX_EDGES
    return bool(large.any()) and bool(((sizes > 0) & ~large).any())


def _run(fn, part: Part, inputs, recompute: bool) -> Tensor:
    """``fn`` on ``part``'s rows of the inputs (index_select: its backward is one index_add_)."""
    rows = (part.nodes,) * 3 + (part.edges, part.lines, part.edges, part.nodes)
    return fn(*(x.index_select(0, index) for x, index in zip(inputs, rows)), part.graph, recompute)


def plstm_mixed(q, k, v, source, transition, mark, direct, graph: LineGraph,
                recompute: bool = False) -> Tensor:
    """pLSTM with ``parallel`` on the batch's small components and ``levels`` on its large ones."""
    split = split_of(graph)
    inputs = (q, k, v, source, transition, mark, direct)
    if not split.large.graph.num_edges:  # nothing too large: the parallel form takes it all
        return plstm_parallel(*inputs, graph, recompute)
    if not split.small.graph.num_edges:  # only edgeless nodes beside the large graphs
        return plstm_levels(*inputs, graph, recompute)
    small = _run(plstm_parallel, split.small, inputs, recompute)
    large = _run(plstm_levels, split.large, inputs, recompute)
    return torch.cat([small, large]).index_select(0, split.order)


dispatch.register_backend("mixed", plstm_mixed, auto_for=is_mixed)
