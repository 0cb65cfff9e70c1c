"""Benchmark datasets: OGB molecules (downloaded or rebuilt offline), any SMILES CSV, TU
datasets with the pLSTM paper's 10-fold protocol, the embedded TPSA default, and directed data:
ENAS architecture DAGs and Stanford Sentiment Treebank trees.

    from plstm_graph.data import get_dataset, dataset_names
    ds = get_dataset("ogbg-molbace")          # BenchmarkDataset
    ds.dataset, ds.split(), ds.evaluate(y_true, y_pred)
"""
from plstm_graph.data.benchmark import BenchmarkDataset
from plstm_graph.data.enas import EnasDataset, enas_graph, load_enas
from plstm_graph.data.errors import DatasetFileError, DatasetNotFoundError
from plstm_graph.data.molecule import mol_to_graph, parse_smiles, smiles_to_graph
from plstm_graph.data.ogb import OGB_MOLECULE_DATASETS, load_ogb
from plstm_graph.data.rebuild import rebuild_ogb
from plstm_graph.data.registry import DEFAULT_DATASET, dataset_names, get_dataset
from plstm_graph.data.root import cache_dir, data_root, data_roots
from plstm_graph.data.scaffold import random_split, scaffold_split
from plstm_graph.data.smiles_csv import SmilesDataset, load_smiles_csv
from plstm_graph.data.sst import SSTDataset, load_sst, parse_tree
from plstm_graph.data.tpsa import TPSA_CSV, load_tpsa
from plstm_graph.data.tu import TU_DATASETS, load_tu, tu_splits

__all__ = [
    "BenchmarkDataset", "DatasetFileError", "DatasetNotFoundError", "DEFAULT_DATASET",
    "EnasDataset", "OGB_MOLECULE_DATASETS", "SSTDataset", "enas_graph", "load_enas", "load_sst", "parse_tree",
    "SmilesDataset", "TPSA_CSV", "TU_DATASETS", "cache_dir", "data_root", "data_roots", "dataset_names", "get_dataset",
    "load_ogb", "load_smiles_csv", "load_tpsa", "load_tu", "mol_to_graph", "parse_smiles", "random_split",
    "rebuild_ogb", "scaffold_split", "smiles_to_graph", "tu_splits",
]
