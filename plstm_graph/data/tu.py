"""TU graph-classification datasets with the pLSTM paper's 10-fold protocol.

Raw files (``NAME_A.txt``, ``NAME_graph_indicator.txt``, ...) are read from
``<root>/tu/NAME/raw`` or ``<root>/NAME/raw`` in the first data root that has them, so a data
root pointing at ``../shared/data`` works; that folder may be read-only, so PyG's processed files
go to the cache (:func:`plstm_graph.data.root.cache_dir`), keyed to the raw files' sizes and
modification times, never beside the raw files. A dataset found nowhere is downloaded into
``<root>/tu/NAME`` of the first writable data root (else the cache) where the network allows. Node labels are one-hot as
:class:`torch_geometric.datasets.TUDataset` gives them (continuous attributes are left out), so
are edge labels (``edge_attr`` is ``None`` where a dataset has none).

Protocol (pLSTM paper and reference code): ``StratifiedKFold(10, shuffle=True,
random_state=42)`` gives the test fold; the other nine folds are split 8/9 : 1/9 into train and
validation by ``train_test_split(stratify=labels, random_state=42)``.
"""
import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch_geometric.datasets import TUDataset

from plstm_graph.data.benchmark import BenchmarkDataset, Split, as_split
from plstm_graph.data.errors import DatasetFileError, DatasetNotFoundError
from plstm_graph.data.atomic import AtomicProcessing, load_or_reprocess, make_staging_dir, new_folder
from plstm_graph.data.root import PathLike, cache_dir, data_roots, describe_roots, writable_root

#: TU datasets of the pLSTM paper that are available offline here (PTC_MR stands in for PTC_FM).
TU_DATASETS = ("MUTAG", "NCI1", "PROTEINS", "PTC_MR")
NUM_FOLDS = 10
SEED = 42
_REQUIRED = ("A", "graph_indicator", "graph_labels")


def tu_splits(labels: np.ndarray, num_folds: int = NUM_FOLDS, seed: int = SEED) -> List[Split]:
    """The protocol's splits (see the module docstring), one per fold, indices sorted."""
    labels = np.asarray(labels).reshape(-1)
    splits = []
    folds = StratifiedKFold(num_folds, shuffle=True, random_state=seed)
    for rest, test in folds.split(np.zeros(len(labels)), labels):
        train, valid = train_test_split(rest, test_size=1 / (num_folds - 1), stratify=labels[rest],
                                        random_state=seed)
        splits.append(as_split({"train": np.sort(train), "valid": np.sort(valid), "test": np.sort(test)}))
    return splits


def _download_parent(root: Optional[PathLike] = None) -> Path:
    """Where a download goes: ``tu/`` in the first writable data root, else the cache."""
    writable = writable_root(root)
    return writable / "tu" if writable is not None else cache_dir("tu-download")


def find_tu_raw(name: str, root: Optional[PathLike] = None) -> Optional[Path]:
    """``<root>/tu/NAME/raw`` or ``<root>/NAME/raw`` in the first data root that has either
    (else in the download cache), or ``None``."""
    for folder in data_roots(root):
        for candidate in (folder / "tu" / name / "raw", folder / name / "raw"):
            if candidate.is_dir():
                return candidate
    cached = cache_dir("tu-download") / name / "raw"
    return cached if cached.is_dir() else None


class _CachedTUDataset(AtomicProcessing, TUDataset):
    """``TUDataset`` reading raw files from ``raw_folder`` and writing processed ones to ``cache``
    (atomically)."""

    def __init__(self, name: str, raw_folder: Path, cache: Path, transform: Optional[Callable] = None):
        self._raw_folder, self._cache = raw_folder, cache
        super().__init__(str(cache), name, transform=transform)

    @property
    def raw_dir(self) -> str:
        return str(self._raw_folder)

    @property
    def processed_dir(self) -> str:
        return str(self._cache / "processed")

    def download(self) -> None:  # raw files are checked before; never write beside them
        raise DatasetNotFoundError(f"{self._raw_folder}: TU files missing")


def _check_raw(name: str, raw: Path) -> None:
    for part in _REQUIRED:
        if not (raw / f"{name}_{part}.txt").is_file():
            raise DatasetNotFoundError(f"{raw / f'{name}_{part}.txt'}: missing (a TU dataset needs "
                                       f"{', '.join(f'{name}_{p}.txt' for p in _REQUIRED)})")


def _find_bad_file(name: str, raw: Path) -> Optional[Path]:
    for path in sorted(raw.glob(f"{name}_*.txt")):
        try:
            np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError:
            return path
    return None


def _open_raw(name: str, raw: Path, transform: Optional[Callable]) -> TUDataset:
    _check_raw(name, raw)
    fingerprint = hashlib.sha1(str(raw).encode())
    for path in sorted(raw.glob(f"{name}_*.txt")):  # reprocess when the raw files change
        fingerprint.update(f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    cache = cache_dir("tu", f"{name}-{fingerprint.hexdigest()[:12]}")
    try:
        return load_or_reprocess(cache / "processed", lambda: _CachedTUDataset(name, raw, cache, transform))
    except (ValueError, RuntimeError, IndexError) as error:
        bad = _find_bad_file(name, raw)
        raise DatasetFileError(f"{bad or raw}: cannot be read as TU data ({error})") from error


def _missing(name: str, root: Optional[PathLike]) -> str:
    return (f"TU dataset {name}: no raw files at tu/{name}/raw or {name}/raw in the data roots "
            f"({describe_roots(root)})")


def _download(name: str, root: Optional[PathLike], transform: Optional[Callable]) -> TUDataset:
    try:
        with new_folder(_download_parent(root)) as parent:  # removed again if the download fails
            staging = make_staging_dir(parent, name, ".download")
            try:
                TUDataset(str(staging), name)  # downloads, and checks that PyG can read the files
                (parent / name).mkdir(exist_ok=True)
                os.replace(staging / name / "raw", parent / name / "raw")
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except Exception as error:  # no network shows up as URLError, aiohttp or fsspec errors
        raise DatasetNotFoundError(
            f"{_missing(name, root)}, and the download failed ({error}). Put {name}_A.txt, "
            f"{name}_graph_indicator.txt, {name}_graph_labels.txt (and {name}_node_labels.txt, ...) "
            f"in <root>/tu/{name}/raw of a data root.") from error
    return _open_raw(name, parent / name / "raw", transform)


def load_tu(name: str, root: Optional[PathLike] = None, download: bool = True,
            transform: Optional[Callable] = None) -> BenchmarkDataset:
    """TU dataset ``name`` (any TU name; see :data:`TU_DATASETS` for those available offline)
    with the paper's 10 folds: ``split(fold)`` for ``fold`` in ``0..9``, metric accuracy."""
    if not isinstance(name, str) or not name or os.sep in name:
        raise ValueError(f"name: expected a TU dataset name such as 'MUTAG', got {name!r}")
    raw = find_tu_raw(name, root)
    if raw is not None:
        dataset = _open_raw(name, raw, transform)
    elif download:
        dataset = _download(name, root, transform)
    else:
        raise DatasetNotFoundError(_missing(name, root))
    labels = dataset.y.numpy()
    return BenchmarkDataset(name, dataset, task_type="multiclass classification",
                            num_tasks=dataset.num_classes, metric="acc", features="onehot",
                            splits=tu_splits(labels))
