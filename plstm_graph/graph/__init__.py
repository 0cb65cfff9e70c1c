"""Graph structure: orientation, line graph, levels, D-mode pruning and the PyG transform."""
from .line_graph import LineGraph, build_line_graph, line_graph_index
from .prepare import prepare_dag
from .pruning import prune_to_multitree

__all__ = ["LineGraph", "build_line_graph", "line_graph_index", "prepare_dag", "prune_to_multitree"]
from .transform import DAGData, PrepareDAG, line_graph_of

__all__ += ["DAGData", "PrepareDAG", "line_graph_of"]
from .grid import CORNERS, GridLineGraph, chain_line_graph, grid_edge_index, grid_line_graph

__all__ += ["CORNERS", "GridLineGraph", "chain_line_graph", "grid_edge_index", "grid_line_graph"]
