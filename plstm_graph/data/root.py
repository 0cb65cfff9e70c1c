"""Where datasets live on disk: the data root, and a writable cache for processed files.

The data root is, in order: the ``root`` argument (the CLI's ``--data-root``), the environment
variable ``PLSTM_GRAPH_DATA_ROOT``, or the ``datasets/`` folder of the source checkout
(``~/.cache/plstm_graph/datasets`` for an installed package). Processed files (PyG ``.pt``
files) go to the cache: ``PLSTM_GRAPH_CACHE_DIR``, else ``<default data root>/.cache``, so that
raw data may sit in a read-only folder.
"""
import os
import stat
import tempfile
from pathlib import Path
from typing import Optional, Union

#: Environment variable naming the data root.
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


def data_root(root: Optional[PathLike] = None) -> Path:
    """The data root: ``root`` if given, else ``$PLSTM_GRAPH_DATA_ROOT``, else :func:`default_root`."""
    if root is not None and str(root).strip() == "":
        raise ValueError("root: expected a folder path, got an empty string")
    chosen = root if root is not None else os.environ.get(ROOT_ENV) or default_root()
    return Path(chosen).expanduser().absolute()


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


def make_staging_dir(parent: PathLike, name: str, suffix: str) -> Path:
    """An empty folder ``parent/.<name>.<random><suffix>`` to fill and then rename into place.

    Same parent, so the rename is atomic; usual permissions (``mkdtemp`` makes it private).
    """
    path = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=suffix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o777 & ~umask)
    return path
