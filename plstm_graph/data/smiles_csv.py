"""Any CSV of SMILES and targets as a PyG dataset with OGB features and a scaffold or random split.

Rows are numbered as pandas numbers them (0 = the first data row); messages also give the line
of the file. SMILES that cannot be parsed are reported with their rows and are skipped only
with ``skip_invalid=True``; SMILES that fail only rdkit's valence check are kept by partial
sanitisation (see :mod:`plstm_graph.data.molecule`). Processed datasets are cached, keyed by the
file's content and the options.
"""
import hashlib
import json
import warnings
import zlib
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import ogb
import pandas as pd
import rdkit
import torch
from torch_geometric.data import Data, InMemoryDataset

from plstm_graph.data.benchmark import BenchmarkDataset, as_split
from plstm_graph.data.errors import DatasetFileError
from plstm_graph.data.featurize import featurize
from plstm_graph.data.atomic import atomic_path
from plstm_graph.data.root import PathLike, cache_dir
from plstm_graph.data.scaffold import random_split, split_scaffold_groups

#: Bump when the processed format changes, so that stale caches are not read.
CACHE_VERSION = 1
SPLITS = ("scaffold", "random")
_SMILES_NAMES = ("smiles", "mol")


class SmilesTable(NamedTuple):
    """A CSV read by :func:`read_smiles_csv`."""
    smiles: List[str]            # stripped of surrounding whitespace
    targets: np.ndarray          # [num_rows, num_targets], NaN = missing
    target_columns: List[str]
    first_line: int              # line of the file holding row 0

    def where(self, row: int) -> str:
        return f"row {row} (line {row + self.first_line})"


def read_smiles_csv(path: PathLike, smiles_column: Optional[str] = None,
                    target_columns: Optional[Sequence[str]] = None,
                    csv_options: Optional[dict] = None) -> SmilesTable:
    """Read a CSV of SMILES and numeric targets (empty cells = missing labels).

    ``smiles_column`` defaults to a column named ``smiles`` or ``mol`` (any case), else the
    first column; ``target_columns`` default to all other columns. ``csv_options`` go to
    :func:`pandas.read_csv`.
    """
    path, options = Path(path), dict(csv_options or {})
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, **options)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as error:
        raise DatasetFileError(f"{path}: cannot read it as CSV ({error})") from error
    if frame.empty:  # pandas reads a header-only file as an empty table
        raise DatasetFileError(f"{path}: no data rows (only a header: {list(frame.columns)})")
    columns = [str(column) for column in frame.columns]
    frame.columns = columns
    if smiles_column is None:
        named = [column for column in columns if column.strip().lower() in _SMILES_NAMES]
        smiles_column = named[0] if named else columns[0]
    if smiles_column not in columns:
        raise ValueError(f"smiles_column: {path} has no column {smiles_column!r}; columns: {columns}")
    if target_columns is None:
        target_columns = [column for column in columns if column != smiles_column]
    target_columns = list(target_columns)
    missing = [column for column in target_columns if column not in columns]
    if missing or not target_columns:
        raise ValueError(f"target_columns: {path} has no column(s) {missing or target_columns}; "
                         f"columns: {columns}")
    try:
        targets = frame[target_columns].apply(pd.to_numeric).to_numpy()
    except (ValueError, TypeError) as error:
        raise DatasetFileError(f"{path}: target columns {target_columns} must be numeric "
                               f"({error})") from error
    smiles = [value.strip() if isinstance(value, str) else "" for value in frame[smiles_column]]
    header = options.get("header", "infer")
    skipped = options.get("skiprows", 0)
    first_line = 1 + (skipped if isinstance(skipped, int) else 0) + (0 if header is None else 1)
    return SmilesTable(smiles, targets, target_columns, first_line)


def describe_rows(table: SmilesTable, rows: Sequence[int], limit: int = 20) -> str:
    """``row 3 (line 5): 'C1CC', ...`` for the first ``limit`` of ``rows``."""
    shown = ", ".join(f"{table.where(row)}: {table.smiles[row]!r}" for row in rows[:limit])
    return shown + (f", ... ({len(rows) - limit} more)" if len(rows) > limit else "")


def infer_task_type(targets: np.ndarray) -> str:
    """``"binary classification"`` if every label is 0 or 1, else ``"regression"``."""
    values = targets[~np.isnan(targets.astype(np.float64))]
    return "binary classification" if np.isin(values, (0, 1)).all() else "regression"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SmilesDataset(InMemoryDataset):
    r"""Molecules of a SMILES CSV as PyG graphs with OGB features, with a fixed split.

    Each graph has ``x`` [N, 9] and ``edge_attr`` [E, 3] (int64 OGB feature indices, as
    ``ogb.utils.smiles2graph`` gives them), ``edge_index`` [2, E] (both directions of each
    bond) and ``y`` [1, num_targets] float32 with NaN for missing labels.
    ``split_indices`` holds the ``train`` / ``valid`` / ``test`` indices, ``rows`` the CSV row of
    each graph.

    Args:
        path: the CSV file.
        smiles_column, target_columns, csv_options: see :func:`read_smiles_csv`.
        split: ``"scaffold"`` (Bemis-Murcko, as OGB) or ``"random"`` (seeded by ``seed``).
        skip_invalid: drop unparseable SMILES (with a warning naming their rows) instead of
            raising ``ValueError``.
        partial_sanitization: keep SMILES that fail only rdkit's valence check.
        root: cache folder (default: under :func:`plstm_graph.data.root.cache_dir`).
    """

    def __init__(self, path: PathLike, smiles_column: Optional[str] = None,
                 target_columns: Optional[Sequence[str]] = None, *, csv_options: Optional[dict] = None,
                 split: str = "scaffold", seed: int = 0, skip_invalid: bool = False,
                 partial_sanitization: bool = True, root: Optional[PathLike] = None,
                 transform: Optional[Callable] = None):
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        self.options = dict(smiles_column=smiles_column,
                            target_columns=None if target_columns is None else list(target_columns),
                            csv_options=csv_options or {}, split=split, seed=seed,
                            skip_invalid=skip_invalid, partial_sanitization=partial_sanitization)
        if root is None:
            key = json.dumps([CACHE_VERSION, rdkit.__version__, ogb.__version__, _file_digest(self.path),
                              self.options], sort_keys=True, default=str)
            root = cache_dir("smiles", f"{self.path.name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}")
        super().__init__(str(root), transform)
        self.load(self.processed_paths[0])
        meta = torch.load(self.processed_paths[1])
        self.split_indices = {part: meta[part] for part in ("train", "valid", "test")}
        self.rows = meta["rows"]
        self.target_columns = meta["target_columns"]

    @property
    def raw_file_names(self) -> List[str]:
        return []

    @property
    def processed_file_names(self) -> List[str]:
        return ["data.pt", "split.pt"]

    def process(self) -> None:
        options = self.options
        table = read_smiles_csv(self.path, options["smiles_column"], options["target_columns"],
                                options["csv_options"])
        molecules = featurize(table.smiles, options["partial_sanitization"])
        invalid = [row for row, molecule in enumerate(molecules) if molecule is None]
        if invalid and not options["skip_invalid"]:
            raise ValueError(f"{self.path}: cannot parse the SMILES in {len(invalid)} row(s): "
                             f"{describe_rows(table, invalid)}; fix them, or pass skip_invalid=True "
                             f"to leave them out")
        if invalid:
            warnings.warn(f"{self.path}: skipped {len(invalid)} unparseable SMILES: "
                          f"{describe_rows(table, invalid)}", stacklevel=2)
        rows = [row for row, molecule in enumerate(molecules) if molecule is not None]
        partial = [row for row in rows if molecules[row].partial]
        if partial:
            warnings.warn(f"{self.path}: kept {len(partial)} SMILES that rdkit rejects for valence, "
                          f"by partial sanitisation: {describe_rows(table, partial)}", stacklevel=2)
        if not rows:
            raise ValueError(f"{self.path}: no parseable SMILES")
        data_list = []
        for row in rows:
            graph = molecules[row].graph
            data_list.append(Data(
                x=torch.from_numpy(graph["node_feat"]),
                edge_index=torch.from_numpy(graph["edge_index"]),
                edge_attr=torch.from_numpy(graph["edge_feat"]),
                y=torch.tensor(table.targets[row], dtype=torch.float32).view(1, -1),
                num_nodes=graph["num_nodes"]))
        if options["split"] == "scaffold":
            split = split_scaffold_groups([molecules[row].scaffold for row in rows])
        else:
            split = random_split(len(rows), seed=options["seed"])
        meta = dict(as_split(split), rows=torch.tensor(rows, dtype=torch.long),
                    target_columns=table.target_columns)
        # The data file last: the cache counts as complete once both files exist.
        with atomic_path(self.processed_paths[1]) as partial:
            torch.save(meta, partial)
        with atomic_path(self.processed_paths[0]) as partial:
            self.save(data_list, str(partial))


def load_smiles_csv(path: PathLike, smiles_column: Optional[str] = None,
                    target_columns: Optional[Sequence[str]] = None, *, task_type: Optional[str] = None,
                    metric: Optional[str] = None, split: str = "scaffold", seed: int = 0,
                    skip_invalid: bool = False, partial_sanitization: bool = True,
                    csv_options: Optional[dict] = None, name: Optional[str] = None,
                    transform: Optional[Callable] = None) -> BenchmarkDataset:
    """A SMILES CSV as a :class:`BenchmarkDataset` (see :class:`SmilesDataset` for the options).

    ``task_type`` defaults to binary classification when every label is 0 or 1, else
    regression; ``metric`` to ``"rocauc"`` or ``"rmse"`` accordingly.
    """
    dataset = SmilesDataset(path, smiles_column, target_columns, csv_options=csv_options, split=split,
                            seed=seed, skip_invalid=skip_invalid,
                            partial_sanitization=partial_sanitization, transform=transform)
    task_type = task_type or infer_task_type(dataset.y.numpy())
    allowed: Dict[str, tuple] = {"binary classification": ("rocauc", "ap"), "regression": ("rmse", "mae")}
    if task_type not in allowed:
        raise ValueError(f"task_type: expected one of {sorted(allowed)}, got {task_type!r}")
    metric = metric or allowed[task_type][0]
    if metric not in allowed[task_type]:
        raise ValueError(f"metric: a {task_type} task takes one of {allowed[task_type]}, got {metric!r}")
    return BenchmarkDataset(name or Path(path).name, dataset, task_type=task_type,
                            num_tasks=len(dataset.target_columns), metric=metric, features="ogb",
                            splits=[dataset.split_indices])
