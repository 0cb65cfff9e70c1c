"""Datasets built from source files once, then read back from a processed cache.

Sources are looked for in the data roots (:func:`plstm_graph.data.root.data_roots`), in one of
several layouts, each file plain or gzipped; a download goes to the first writable root (else
the cache) through a staging folder, so no half-downloaded file is ever found. The cache folder
is named by a key of the sources' paths, sizes and modification times and the build options, so
an edited or replaced source is processed again and the raw folders (often read-only, like
``../shared/data``) are never written to. Processed files are written atomically
(:mod:`plstm_graph.data.atomic`), and an unreadable cache is processed again.
"""
import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import IO, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import cumsum

from plstm_graph.data.atomic import atomic_path, load_or_reprocess, make_staging_dir, new_folder
from plstm_graph.data.errors import DatasetNotFoundError
from plstm_graph.data.root import PathLike, cache_dir, data_roots, describe_roots, writable_root

Layout = Sequence[str]


def open_text(path: PathLike) -> IO[str]:
    """``path`` opened for reading text, gunzipped when it ends in ``.gz``."""
    path = Path(path)
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def download_folder(root: Optional[PathLike] = None) -> Path:
    """Where a download goes: the first writable data root, else the cache."""
    writable = writable_root(root)
    return writable if writable is not None else cache_dir("downloads")


def _find(folder: Path, layouts: Sequence[Layout]) -> Optional[List[Path]]:
    for layout in layouts:
        found = []
        for name in layout:
            present = [path for path in (folder / name, folder / f"{name}.gz") if path.is_file()]
            if not present:
                break
            found.append(present[0])
        else:
            return found
    return None


def find_sources(what: str, layouts: Sequence[Layout], root: Optional[PathLike] = None,
                 fetch: Optional[Callable[[Path], None]] = None) -> List[Path]:
    """The files of the first layout found in the data roots (then in the download cache).

    Each layout lists paths relative to a root; each file may also be gzipped (``NAME.gz``).
    When none is found, ``fetch(folder)`` (if given) downloads the data into an empty folder in
    one of the layouts, and the files of that layout move to :func:`download_folder`; else (or
    when that fails) :class:`DatasetNotFoundError` says where the files belong.
    """
    for folder in dict.fromkeys([*data_roots(root), cache_dir("downloads")]):
        found = _find(folder, layouts)
        if found is not None:
            return found
    wanted = " or ".join(", ".join(layout) for layout in layouts)
    missing = f"{what}: not found; put {wanted} (each may be gzipped) in a data root ({describe_roots(root)})"
    if fetch is None:
        raise DatasetNotFoundError(missing)
    try:
        with new_folder(download_folder(root)) as folder:  # removed again if the download fails
            staging = make_staging_dir(folder, what, ".download")
            try:
                fetch(staging)
                found = _find(staging, layouts)
                if found is None:
                    raise FileNotFoundError(f"it did not give {wanted}")
                placed = [folder / path.relative_to(staging) for path in found]
                for path, target in zip(found, placed):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except Exception as error:  # no network shows up as URLError, OSError, ...
        raise DatasetNotFoundError(f"{missing}, and the download failed ({error})") from error
    return placed


def source_key(sources: Sequence[Path], options: dict) -> str:
    """A short hex key of ``sources`` (path, size, mtime) and the JSON-able ``options``."""
    stamps = [[str(Path(path).resolve()), os.stat(path).st_size, os.stat(path).st_mtime_ns]
              for path in sources]
    text = json.dumps([stamps, options], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class ProcessedDataset(InMemoryDataset):
    """An ``InMemoryDataset`` whose graphs :meth:`build` makes from ``sources``.

    Subclasses implement :meth:`build`, returning the graphs in ``InMemoryDataset``'s storage
    format (see :func:`stored_graphs`) and a dict of further tensors or plain Python values
    (splits, a vocabulary), which becomes :attr:`meta`.

    Args:
        kind: cache sub-folder, e.g. ``"enas"``.
        sources: the files :meth:`build` reads.
        options: JSON-able build options; part of the cache key (bump a version in them when
            the processed format changes).
        transform: applied to each graph on access, as in PyG.
    """

    def __init__(self, kind: str, sources: Sequence[Path], options: dict,
                 transform: Optional[Callable] = None):
        self.sources, self.options = [Path(path) for path in sources], dict(options)
        folder = cache_dir(kind, source_key(self.sources, self.options))
        load_or_reprocess(folder / "processed", lambda: self._open(folder, transform))

    def _open(self, folder: Path, transform: Optional[Callable]) -> None:
        super().__init__(str(folder), transform)
        self.load(self.processed_paths[0])
        self.meta: Dict = torch.load(self.processed_paths[1], weights_only=False)

    @property
    def raw_file_names(self) -> List[str]:
        return []

    @property
    def processed_file_names(self) -> List[str]:
        return ["data.pt", "meta.pt"]

    def download(self) -> None:  # the loaders find or download the sources before
        pass

    def build(self) -> Tuple[Data, Dict[str, Tensor], Dict]:
        raise NotImplementedError

    def process(self) -> None:
        data, slices, meta = self.build()
        # A cache is complete once both files exist; neither is ever seen half-written.
        with atomic_path(self.processed_paths[1]) as partial:
            torch.save(meta, partial)
        with atomic_path(self.processed_paths[0]) as partial:
            torch.save((data.to_dict(), slices, Data), partial)


def stored_graphs(num_nodes: Tensor, num_edges: Tensor, graph_attrs: Sequence[str] = (),
                  **attrs: Tensor) -> Tuple[Data, Dict[str, Tensor]]:
    """Graphs stored back to back, as ``InMemoryDataset`` keeps them, without a ``Data`` object
    per graph (much faster to build for many small graphs).

    Args:
        num_nodes, num_edges: [num_graphs] sizes of the graphs.
        graph_attrs: the names in ``attrs`` with one row per graph (e.g. a graph-level ``y``).
        attrs: ``edge_index`` [2, E] with each graph's node ids counted from 0 and ``edge_*``
            attributes (one row per edge), the ``graph_attrs``, and node attributes (one row per
            node), each the graphs' rows concatenated in order.

    Returns:
        ``(data, slices)`` for ``InMemoryDataset.data`` and ``.slices``.
    """
    counts = {"node": num_nodes, "edge": num_edges, "graph": torch.ones_like(num_nodes)}
    slices = {}
    for key, value in attrs.items():
        level = "edge" if key.startswith("edge_") else "graph" if key in graph_attrs else "node"
        rows = value.size(-1 if key == "edge_index" else 0)
        if rows != int(counts[level].sum()):
            raise ValueError(f"{key}: expected {int(counts[level].sum())} rows (one per {level}), got {rows}")
        slices[key] = cumsum(counts[level])
    return Data(**attrs), slices
