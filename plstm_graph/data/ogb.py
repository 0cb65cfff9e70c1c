"""OGB molecule benchmarks (``ogbg-mol*``) through ogb's own PyG loader, safe to use offline.

Datasets are looked up in every data root in OGB's layout, ``<root>/ogbg_molbace/{mapping,raw,
split}``. A missing folder is downloaded from OGB where the network allows, into the first
writable data root (or the cache); otherwise the error says how to rebuild it from a MoleculeNet
CSV (:mod:`plstm_graph.data.rebuild`) into a writable folder.

ogb's processed file, ``processed/geometric_data_processed.pt``, is written under a temporary
name and renamed into place, and is keyed to the raw files (their names, sizes and modification
times, recorded beside it): when they change, or the processed file cannot be read, the folder
is processed again, with a warning. Two workarounds for ogb 1.3.6:

* torch >= 2.6 loads with ``weights_only=True``, which rejects the PyG classes pickled in ogb's
  processed file: :func:`allow_pyg_pickles` allows exactly those classes while ogb loads.
* ogb asks an interactive question when a dataset folder lacks its ``RELEASE_v1.txt`` marker.
  Such folders (e.g. OGB folders copied from elsewhere) are never handed to ogb: their files are
  mirrored to the cache, with the marker, and ogb reads the mirror. Folders that are read-only
  (by their mode bits) are mirrored as well, since ogb writes ``processed/`` inside the folder.
"""
import gzip
import hashlib
import os
import shutil
import warnings
import zlib
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import numpy as np
import pandas as pd
import torch
from ogb import graphproppred
from ogb.graphproppred import Evaluator, PygGraphPropPredDataset
from ogb.utils import url as ogb_url
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import GlobalStorage

from plstm_graph.data.benchmark import BenchmarkDataset, as_split
from plstm_graph.data.errors import DatasetFileError, DatasetNotFoundError
from plstm_graph.data.atomic import (AtomicProcessing, atomic_path, load_or_reprocess,
                                     make_staging_dir, new_folder)
from plstm_graph.data.root import (PathLike, cache_dir, data_roots, default_root, describe_roots,
                                   find_in_roots, is_writable, writable_root)

#: OGB molecule datasets -> their MoleculeNet CSV (None: download only).
OGB_MOLECULE_DATASETS: Dict[str, Optional[str]] = {
    "ogbg-molbace": "bace.csv.gz",
    "ogbg-molbbbp": "bbbp.csv.gz",
    "ogbg-molclintox": "clintox.csv.gz",
    "ogbg-molesol": "delaney.csv.gz",
    "ogbg-molfreesolv": "freesolv.csv.gz",
    "ogbg-molhiv": "hiv.csv.gz",
    "ogbg-mollipo": "lipo.csv.gz",
    "ogbg-molpcba": None,
    "ogbg-molsider": "sider.csv.gz",
    "ogbg-moltox21": "tox21.csv.gz",
    "ogbg-moltoxcast": "toxcast.csv.gz",
}

SPLIT_PARTS = ("train", "valid", "test")
PROCESSED_FILE = Path("processed") / "geometric_data_processed.pt"
#: Beside the processed file: the fingerprint of the raw files it was made from.
RAW_FINGERPRINT_FILE = Path("processed") / "raw_fingerprint.txt"


@lru_cache(maxsize=None)
def _master() -> pd.DataFrame:
    return pd.read_csv(Path(graphproppred.__file__).parent / "master.csv", index_col=0, keep_default_na=False)


def ogb_meta(name: str) -> pd.Series:
    """ogb's own description of dataset ``name`` (its ``master.csv`` column)."""
    if name not in OGB_MOLECULE_DATASETS:
        raise ValueError(f"name: expected one of {sorted(OGB_MOLECULE_DATASETS)}, got {name!r}")
    return _master()[name]


def folder_name(name: str) -> str:
    """OGB's folder name of dataset ``name``: ``ogbg-molbace`` -> ``ogbg_molbace``."""
    return name.replace("-", "_")


def release_marker(name: str) -> str:
    """The file whose absence makes ogb ask whether to update a dataset folder."""
    return f"RELEASE_v{ogb_meta(name)['version']}.txt"


def suggested_root(root: Optional[PathLike] = None) -> Path:
    """Where to put a dataset that is missing: the first writable data root, else the default
    root (or ``~/.cache/plstm_graph/datasets``), never a read-only folder."""
    writable = writable_root(root)
    if writable is not None:
        return writable
    fallback = default_root()
    return fallback if is_writable(fallback) else Path.home() / ".cache" / "plstm_graph" / "datasets"


def rebuild_hint(name: str, root: Optional[PathLike] = None) -> str:
    """How to get dataset ``name`` into a writable folder the data roots ``root`` search."""
    target = suggested_root(root)
    roots = data_roots(root)
    search = "" if target in roots else (
        f"\nthen add {target} to the data roots: "
        f"--data-root {os.pathsep.join(map(str, [*roots, target]))} (or PLSTM_GRAPH_DATA_ROOT)")
    csv = OGB_MOLECULE_DATASETS[name]
    if csv is None:
        return (f"{name} has no MoleculeNet CSV to rebuild it from: load it once with internet, or "
                f"copy OGB's {folder_name(name)} folder into {target}{search}")
    return (f"Without internet, rebuild it from the MoleculeNet CSV ({csv}, e.g. in "
            f"../shared/data/moleculenet or chemprop's data/ folder):\n"
            f"  plstm-graph data rebuild-ogb {name} --csv ../shared/data/moleculenet/{csv} --root {target}\n"
            f"or copy OGB's {folder_name(name)} folder (mapping/, raw/, split/) into {target}{search}")


@contextmanager
def allow_pyg_pickles() -> Iterator[None]:
    """Let ``torch.load(weights_only=True)`` read the PyG objects ogb pickles (torch >= 2.6)."""
    with torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage]):
        yield


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: missing; rebuild the dataset folder "
                                   f"(plstm-graph data rebuild-ogb ... --overwrite)")
    try:
        with gzip.open(path, "rt") as file:
            return file.read()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise DatasetFileError(f"{path}: not a readable gzip-compressed CSV ({error})") from error


def _read_ints(path: Path) -> np.ndarray:
    try:
        return np.array(_read_text(path).split(), dtype=np.int64)
    except ValueError as error:
        raise DatasetFileError(f"{path}: expected one integer per line ({error})") from error


def _num_rows(path: Path, columns: int) -> int:
    lines = _read_text(path).splitlines()
    if lines and len(lines[0].split(",")) != columns:
        raise DatasetFileError(f"{path}: expected {columns} columns, got {len(lines[0].split(','))}")
    return len(lines)


def check_ogb_folder(folder: PathLike, num_tasks: int) -> int:
    """Check that an OGB molecule folder is complete and consistent; returns the graph count.

    Raises :class:`DatasetNotFoundError` naming a missing file and :class:`DatasetFileError`
    naming a corrupt or inconsistent one.
    """
    folder = Path(folder)
    raw = folder / "raw"
    num_nodes = _read_ints(raw / "num-node-list.csv.gz")
    num_edges = _read_ints(raw / "num-edge-list.csv.gz")
    num_graphs, total_nodes, total_edges = len(num_nodes), int(num_nodes.sum()), int(num_edges.sum())
    if len(num_edges) != num_graphs:
        raise DatasetFileError(f"{raw / 'num-edge-list.csv.gz'}: {len(num_edges)} rows, but "
                               f"num-node-list.csv.gz has {num_graphs}")
    for file, rows, columns in (("graph-label.csv.gz", num_graphs, num_tasks),
                                ("node-feat.csv.gz", total_nodes, 9),
                                ("edge.csv.gz", total_edges, 2),
                                ("edge-feat.csv.gz", total_edges, 3)):
        counted = _num_rows(raw / file, columns)
        if counted != rows:
            raise DatasetFileError(f"{raw / file}: {counted} rows, but num-node-list.csv.gz and "
                                   f"num-edge-list.csv.gz imply {rows}")
    for part in SPLIT_PARTS:
        path = folder / "split" / "scaffold" / f"{part}.csv.gz"
        index = _read_ints(path)
        if index.size and (index.min() < 0 or index.max() >= num_graphs):
            raise DatasetFileError(f"{path}: indices must lie in 0..{num_graphs - 1}")
    return num_graphs


def _source_files(folder: Path) -> list:
    return sorted(path for path in folder.rglob("*")
                  if path.is_file() and "processed" not in path.relative_to(folder).parts)


def raw_fingerprint(folder: PathLike) -> str:
    """A hex digest of the names, sizes and modification times of ``folder``'s files outside
    ``processed/``: it changes when a raw or split file is edited, replaced or truncated."""
    folder = Path(folder)
    digest = hashlib.sha1()
    for path in _source_files(folder):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _mirror(folder: Path, marker: str) -> Path:
    """A writable copy of ``folder`` (without ``processed/``) with ogb's release marker."""
    files = _source_files(folder)
    key = hashlib.sha1(f"{folder}:{raw_fingerprint(folder)}".encode()).hexdigest()[:12]
    target = cache_dir("ogb", f"{folder.name}-{key}") / folder.name
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging_dir(target.parent, folder.name, ".tmp")
    try:
        for path in files:  # plain copies: a read-only source's mode bits must not follow
            destination = staging / path.relative_to(folder)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
        (staging / marker).write_text("")
        os.replace(staging, target)
    except OSError:
        if not (target / marker).is_file():  # another process may have won the race
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_parent(root: Optional[PathLike] = None) -> Path:
    """Where a download goes: the first writable data root, else the cache."""
    return writable_root(root) or cache_dir("ogb")


def download_ogb(name: str, root: Optional[PathLike] = None) -> Path:
    """Download OGB's folder of ``name`` into :func:`download_parent` (atomically); returns the
    folder. Raises :class:`DatasetNotFoundError` with the offline rebuild command when it fails,
    leaving no folder behind that it created.
    """
    meta = ogb_meta(name)
    try:
        with new_folder(download_parent(root)) as parent:
            staging = make_staging_dir(parent, folder_name(name), ".download")
            try:
                archive = ogb_url.download_url(meta["url"], str(staging))
                ogb_url.extract_zip(archive, str(staging))
                extracted = staging / meta["download_name"]
                (extracted / release_marker(name)).touch()
                target = parent / folder_name(name)
                os.replace(extracted, target)
                return target
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
        raise DatasetNotFoundError(f"{name}: not found in the data roots ({describe_roots(root)}) and "
                                   f"the download of {meta['url']} failed ({error}).\n"
                                   f"{rebuild_hint(name, root)}") from error


def find_ogb_folder(name: str, root: Optional[PathLike] = None) -> Optional[Path]:
    """OGB's folder of ``name`` in the first data root that has it, else in the download cache
    (where downloads go when every root is read-only), else ``None``."""
    found = find_in_roots(folder_name(name), root)
    cached = cache_dir("ogb") / folder_name(name)
    return found if found is not None else (cached if cached.is_dir() else None)


class _AtomicOGBDataset(AtomicProcessing, PygGraphPropPredDataset):
    """ogb's dataset with its processed file written under a temporary name, then renamed."""


def _process_or_load(name: str, folder: Path, num_tasks: int, transform: Optional[Callable],
                     fingerprint: str) -> PygGraphPropPredDataset:
    if not (folder / PROCESSED_FILE).is_file():
        check_ogb_folder(folder, num_tasks)  # names a missing or corrupt raw file
        # Recorded before the processed file it describes exists: another process loading the
        # folder meanwhile then never takes a processed file for one of unknown origin.
        (folder / RAW_FINGERPRINT_FILE).parent.mkdir(exist_ok=True)
        with atomic_path(folder / RAW_FINGERPRINT_FILE) as partial:
            partial.write_text(fingerprint)
    with allow_pyg_pickles():
        return _AtomicOGBDataset(name, root=str(folder.parent), transform=transform)


def _open_dataset(name: str, folder: Path, num_tasks: int,
                  transform: Optional[Callable]) -> PygGraphPropPredDataset:
    """ogb's dataset of ``folder``, processed again (with a warning) when the raw files changed
    since it was processed or its processed files cannot be read."""
    processed, key = folder / PROCESSED_FILE, folder / RAW_FINGERPRINT_FILE
    fingerprint = raw_fingerprint(folder)
    if processed.is_file() and not (key.is_file() and key.read_text() == fingerprint):
        if key.is_file():
            warnings.warn(f"{folder}: raw files changed since they were processed; processing "
                          f"them again", stacklevel=3)
        # Without a record of its raw files (an older version made it) it is not to be trusted.
        shutil.rmtree(processed.parent, ignore_errors=True)
    return load_or_reprocess(processed.parent, lambda: _process_or_load(name, folder, num_tasks,
                                                                        transform, fingerprint))


def _evaluator(name: str, metric: str) -> Callable:
    evaluator = Evaluator(name)
    return lambda y_true, y_pred: evaluator.eval({"y_true": y_true, "y_pred": y_pred})[metric]


def load_ogb(name: str, root: Optional[PathLike] = None, download: bool = True,
             transform: Optional[Callable] = None) -> BenchmarkDataset:
    """OGB molecule dataset ``name`` from the first data root holding its OGB folder, with OGB's
    scaffold split and ``ogb.graphproppred.Evaluator``; downloads it if missing and ``download``
    is set."""
    meta = ogb_meta(name)
    folder = find_ogb_folder(name, root)
    if folder is None:
        if not download:
            raise DatasetNotFoundError(f"{name}: no folder {folder_name(name)} in the data roots "
                                       f"({describe_roots(root)}).\n{rebuild_hint(name, root)}")
        folder = download_ogb(name, root)
    marker = release_marker(name)
    if not (folder / marker).is_file() or not is_writable(folder):
        folder = _mirror(folder, marker)
    num_tasks = int(meta["num tasks"])
    dataset = _open_dataset(name, folder, num_tasks, transform)
    try:
        split = dataset.get_idx_split()
    except Exception:
        check_ogb_folder(folder, num_tasks)  # names the bad split file
        raise
    metric = meta["eval metric"]
    return BenchmarkDataset(name, dataset, task_type=meta["task type"], num_tasks=num_tasks,
                            metric=metric, features="ogb", splits=[as_split(split)],
                            evaluator=_evaluator(name, metric))
