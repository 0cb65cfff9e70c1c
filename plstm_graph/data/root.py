"""Where datasets live on disk: the data roots and a writable cache.

The data roots are, in order: the ``root`` argument (the CLI's ``--data-root``), the environment
variable ``PLSTM_GRAPH_DATA_ROOT``, or the ``datasets/`` folder of the source checkout
(``~/.cache/plstm_graph/datasets`` for an installed package). Each may be a list of folders
separated by :data:`os.pathsep` (``../shared/data:datasets``), searched in that order; downloads
and rebuilds go to the first writable one. Processed files (PyG ``.pt`` files) go to the cache:
``PLSTM_GRAPH_CACHE_DIR``, else ``<default data root>/.cache``, so that raw data may sit in a
read-only folder. How files are written there: :mod:`plstm_graph.data.atomic`.
"""
import os
import stat
from pathlib import Path
from typing import List, Optional, Union

#: Environment variable naming the data root (or an os.pathsep-separated list of roots).
ROOT_ENV = "PLSTM_GRAPH_DATA_ROOT"
#: Environment variable naming the cache of processed files.
CACHE_ENV = "PLSTM_GRAPH_CACHE_DIR"

PathLike = Union[str, os.PathLike]


def default_root() -> Path:
    """``<checkout>/datasets`` in a source checkout, else ``~/.cache/plstm_graph/datasets``."""
    top = Path(__file__).resolve().parents[2]
    # A checkout has setup.cfg beside the package; an installed package sits in site-packages,
    # whose ``datasets`` folder would be HuggingFace's package, never ours.
    if (top / "setup.cfg").is_file() and (top / "datasets").is_dir():
        return top / "datasets"
    return Path.home() / ".cache" / "plstm_graph" / "datasets"


def data_roots(root: Optional[PathLike] = None) -> List[Path]:
    """The data roots in search order: ``root`` if given, else ``$PLSTM_GRAPH_DATA_ROOT``, else
    :func:`default_root`; a string may list several folders separated by :data:`os.pathsep`."""
    if root is not None and str(root).strip() == "":
        raise ValueError("root: expected a folder path, got an empty string")
    chosen = root if root is not None else os.environ.get(ROOT_ENV) or default_root()
    parts = [part for part in str(chosen).split(os.pathsep) if part.strip()]
    if not parts:
        raise ValueError(f"root: expected a folder path or a list of them, got {str(chosen)!r}")
    return list(dict.fromkeys(Path(part).expanduser().absolute() for part in parts))


def data_root(root: Optional[PathLike] = None) -> Path:
    """The first of :func:`data_roots`: the one folder for code that looks in a single place."""
    return data_roots(root)[0]


def find_in_roots(relative: PathLike, root: Optional[PathLike] = None) -> Optional[Path]:
    """``<data root>/<relative>`` in the first data root that has it, else ``None``."""
    for folder in data_roots(root):
        if (folder / relative).exists():
            return folder / relative
    return None


def writable_root(root: Optional[PathLike] = None) -> Optional[Path]:
    """The first data root that is, or may be created, writable; ``None`` if all are read-only."""
    return next((folder for folder in data_roots(root) if is_writable(folder)), None)


def describe_roots(root: Optional[PathLike] = None) -> str:
    """The data roots as the user would write them (os.pathsep-separated), marking absent ones."""
    return os.pathsep.join(str(folder) + ("" if folder.is_dir() else " (does not exist)")
                           for folder in data_roots(root))


def cache_dir(*parts: str) -> Path:
    """A writable folder for processed files: ``$PLSTM_GRAPH_CACHE_DIR/<parts>``, else under
    ``<default data root>/.cache`` (falling back to ``~/.cache/plstm_graph`` if that is read-only)."""
    base = os.environ.get(CACHE_ENV)
    if base:
        path = Path(base).expanduser().absolute()
    else:
        path = default_root() / ".cache"
        if not is_writable(path):
            path = Path.home() / ".cache" / "plstm_graph"
    return path.joinpath(*parts)


def is_writable(path: PathLike) -> bool:
    """Whether files may be created in ``path`` (or in its nearest existing ancestor).

    Mode bits count as well as ``os.access``: a root user may write anywhere, but a folder
    marked read-only (like ``../shared/data``) must still be left alone.
    """
    path = Path(path).absolute()
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & write_bits)
