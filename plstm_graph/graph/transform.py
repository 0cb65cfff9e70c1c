"""Precomputing line graphs per ``Data`` so that PyG's ``DataLoader`` batches them correctly."""
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from .line_graph import MODES, LineGraph, build_line_graph
from .orientation import ORIENTATIONS, check_acyclic
from .prepare import orient_dag, prepare_dag
from .validation import check_one_of


def _key(mode: str, reverse: bool) -> str:
    return f"dag_{mode}{'_rev' if reverse else ''}"


class DAGData(Data):
    """A ``Data`` holding precomputed DAG line graphs (written by :class:`PrepareDAG`).

    Stored attributes, batched by PyG with the right offsets:

    * ``dag_edge_index`` ``[2, E]``: oriented DAG edges (offset by the number of nodes),
    * ``dag_edge_id`` ``[E]``: input ``edge_index`` column of each DAG edge (offset by the
      number of input edges, so it indexes the batch's ``edge_attr``),
    * ``dag_{P,D}[_rev]_line_index`` ``[2, L]``: line edges (offset by the number of DAG edges),
    * ``dag_{P,D}[_rev]_edge_level`` ``[E]``: edge levels (no offset: levels are per graph).
    """

    def __inc__(self, key, value, *args, **kwargs):
        if key == "dag_edge_id":
            return self.edge_index.size(1) if self.edge_index is not None else 0
        if key.startswith("dag_") and key.endswith("_line_index"):
            return self.dag_edge_index.size(1)
        return super().__inc__(key, value, *args, **kwargs)

    def has_line_graph(self, mode: str = "P", reverse: bool = False) -> bool:
        return f"{_key(mode, reverse)}_line_index" in self

    def line_graph(self, mode: str = "P", reverse: bool = False) -> LineGraph:
        """The precomputed :class:`LineGraph` (of the whole batch, on a ``Batch``)."""
        key = _key(mode, reverse)
        if not self.has_line_graph(mode, reverse):
            raise KeyError(f"no precomputed line graph {key!r}: apply PrepareDAG(modes=[{mode!r}], "
                           f"reverse={reverse}) to the dataset")
        edge_index = self.dag_edge_index.flip(0) if reverse else self.dag_edge_index
        return LineGraph(edge_index, self.dag_edge_id, self[f"{key}_line_index"],
                         self[f"{key}_edge_level"], self.num_nodes, mode)


def line_graph_of(data: Data, mode: str = "P", reverse: bool = False,
                  orientation: str = "index") -> LineGraph:
    """The line graph of ``data`` (a ``Data`` or ``Batch``): precomputed when
    :class:`PrepareDAG` stored it, otherwise built now from ``data.edge_index``."""
    if isinstance(data, DAGData) and data.has_line_graph(mode, reverse):
        return data.line_graph(mode, reverse)
    return prepare_dag(data.edge_index, data.num_nodes, mode=mode, orientation=orientation,
                       reverse=reverse)


class PrepareDAG(BaseTransform):
    """Orients each graph into a DAG and stores its line graph(s) on a :class:`DAGData`.

    D-mode pruning is sequential per graph, so doing it once here (e.g. as a dataset's
    ``pre_transform``) keeps it out of the training loop.

    Args:
        modes: which line graphs to store (``"P"`` and/or ``"D"``).
        reverse: also store the line graphs of the reversed DAG.
        orientation: ``"index"`` or ``"given"`` (see :func:`~plstm_graph.prepare_dag`).
        line_graphs: exactly the ``(mode, reverse)`` pairs to store, instead of ``modes`` x
            ``reverse`` (what a model declares it reads, see
            :meth:`~plstm_graph.nn.GraphModel.transform`).
    """

    def __init__(self, modes=("P", "D"), reverse: bool = True, orientation: str = "index",
                 line_graphs=None):
        if line_graphs is None:
            modes = tuple(modes)
            if not modes or any(mode not in MODES for mode in modes):
                raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes!r}")
            line_graphs = [(mode, flip) for flip in ((False, True) if reverse else (False,))
                           for mode in modes]
        line_graphs = tuple(dict.fromkeys((mode, bool(flip)) for mode, flip in line_graphs))
        if not line_graphs or any(mode not in MODES for mode, _ in line_graphs):
            raise ValueError(f"line_graphs must be non-empty (mode, reverse) pairs with a mode in "
                             f"{MODES}, got {line_graphs!r}")
        check_one_of(orientation, "orientation", ORIENTATIONS)
        self.line_graphs, self.orientation = line_graphs, orientation

    def structures(self, edge_index, num_nodes: int) -> dict:
        """The attributes :class:`DAGData` stores, for one graph or a disjoint union."""
        dag_edge_index, edge_id, depth = orient_dag(edge_index, num_nodes, self.orientation)
        out = {"dag_edge_index": dag_edge_index, "dag_edge_id": edge_id}
        for reverse in dict.fromkeys(flip for _, flip in self.line_graphs):
            edges = dag_edge_index.flip(0) if reverse else dag_edge_index
            if reverse:
                depth = check_acyclic(edges, num_nodes)  # once per direction, for every mode
            for mode in (mode for mode, flip in self.line_graphs if flip == reverse):
                graph = build_line_graph(edges, edge_id, num_nodes, mode, depth=depth)
                key = _key(mode, reverse)
                out[f"{key}_line_index"], out[f"{key}_edge_level"] = graph.line_index, graph.edge_level
        return out

    def forward(self, data: Data) -> DAGData:
        return self._forward_chunk([data])[0]

    def forward_many(self, data_list, chunk_size: int = 512) -> list:
        """``[self(data) for data in data_list]``, computed on disjoint unions of ``chunk_size``
        graphs: the topological sweeps then run once per level of a chunk rather than once per
        level of every graph, and only the D-mode pruning still visits line edges one by one
        (pruning a union equals pruning its graphs, see :mod:`~plstm_graph.graph.pruning`)."""
        prepared = []
        for start in range(0, len(data_list), chunk_size):
            prepared += self._forward_chunk(list(data_list[start:start + chunk_size]))
        return prepared

    def _forward_chunk(self, chunk: list) -> list:
        for data in chunk:
            edge_attr = getattr(data, "edge_attr", None)
            if edge_attr is not None and edge_attr.size(0) != data.edge_index.size(1):
                raise ValueError(f"edge_attr has {edge_attr.size(0)} rows but edge_index has "
                                 f"{data.edge_index.size(1)} columns: one row per edge is needed")
        num_nodes = torch.tensor([data.num_nodes for data in chunk])
        num_inputs = torch.tensor([data.edge_index.size(1) for data in chunk])
        node_offset = torch.cumsum(num_nodes, 0) - num_nodes
        input_offset = torch.cumsum(num_inputs, 0) - num_inputs
        union = torch.cat([data.edge_index + offset
                           for data, offset in zip(chunk, node_offset.tolist())], dim=1)
        found = self.structures(union, int(num_nodes.sum()))

        # Orientation keeps the input order, and line edges are sorted by e_in, so each
        # graph's DAG edges and line edges are contiguous runs of the union's.
        node_graph = torch.repeat_interleave(torch.arange(len(chunk)), num_nodes)
        edge_graph = node_graph[found["dag_edge_index"][0]]
        num_edges = torch.bincount(edge_graph, minlength=len(chunk))
        edge_offset = torch.cumsum(num_edges, 0) - num_edges
        parts = {
            "dag_edge_index": (found["dag_edge_index"].split(num_edges.tolist(), dim=1), node_offset),
            "dag_edge_id": (found["dag_edge_id"].split(num_edges.tolist()), input_offset),
        }
        for key, value in found.items():
            if key.endswith("_edge_level"):
                parts[key] = (value.split(num_edges.tolist()), None)
            elif key.endswith("_line_index"):
                counts = torch.bincount(edge_graph[value[0]], minlength=len(chunk)).tolist()
                parts[key] = (value.split(counts, dim=1), edge_offset)

        prepared = []
        for i, data in enumerate(chunk):
            out = data if isinstance(data, DAGData) else DAGData(**dict(data.items()))
            for key, (pieces, offset) in parts.items():
                out[key] = pieces[i] if offset is None else pieces[i] - offset[i]
            prepared.append(out)
        return prepared

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(line_graphs={list(self.line_graphs)}, "
                f"orientation={self.orientation!r})")
