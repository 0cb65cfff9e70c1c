"""Precomputing line graphs per ``Data`` so that PyG's ``DataLoader`` batches them correctly."""
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from .line_graph import MODES, LineGraph, build_line_graph
from .orientation import ORIENTATIONS
from .prepare import prepare_dag


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
    """

    def __init__(self, modes=("P", "D"), reverse: bool = True, orientation: str = "index"):
        modes = tuple(modes)
        if not modes or any(mode not in MODES for mode in modes):
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes!r}")
        if orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
        self.modes, self.reverse, self.orientation = modes, reverse, orientation

    def forward(self, data: Data) -> DAGData:
        out = data if isinstance(data, DAGData) else DAGData(**dict(data.items()))
        first = prepare_dag(data.edge_index, data.num_nodes, mode=self.modes[0],
                            orientation=self.orientation)
        out.dag_edge_index, out.dag_edge_id = first.edge_index, first.edge_id
        for mode in self.modes:
            for reverse in (False, True) if self.reverse else (False,):
                edges = first.edge_index.flip(0) if reverse else first.edge_index
                graph = (first if mode == self.modes[0] and not reverse
                         else build_line_graph(edges, first.edge_id, first.num_nodes, mode))
                key = _key(mode, reverse)
                out[f"{key}_line_index"], out[f"{key}_edge_level"] = graph.line_index, graph.edge_level
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(modes={list(self.modes)}, reverse={self.reverse}, "
                f"orientation={self.orientation!r})")
