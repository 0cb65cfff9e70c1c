"""Crash-safe writes: what a killed process leaves behind never loads, and is cleaned up.

Folders and files are written under a hidden temporary name in their final parent,
``.<name>.<host>.<pid>.<random><suffix>``, and renamed into place. The host and process id in
the name let a later run remove what a dead process left behind (:func:`remove_stale`), and
only that: a temporary folder of a process still running, here or on another machine sharing
the folder, is left alone.
"""
import os
import re
import shutil
import socket
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional, TypeVar

from plstm_graph.data.root import PathLike

T = TypeVar("T")


def _host() -> str:
    return socket.gethostname().replace(".", "_")  # no dots: they separate the name's fields


def _owner_tag() -> str:
    return f"{_host()}.{os.getpid()}"


def _usual_mode(path: Path, mode: int) -> None:
    umask = os.umask(0)  # the only way to read it
    os.umask(umask)
    path.chmod(mode & ~umask)  # mkdtemp / mkstemp make them private


def _owner_is_dead(path: Path, name: str) -> bool:
    match = re.match(rf"\.{re.escape(name)}\.([^.]+)\.(\d+)\.", path.name)
    if match is None or match[1] != _host():
        return False  # not ours to judge: another naming, or a process on another machine
    try:
        os.kill(int(match[2]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def stale_paths(parent: PathLike, name: str) -> List[Path]:
    """The temporary files and folders for ``name`` in ``parent`` whose process is dead (killed
    during a download, rebuild or processing)."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    return sorted(path for path in parent.glob(f".{name}.*") if _owner_is_dead(path, name))


def remove_stale(parent: PathLike, name: str) -> List[Path]:
    """Remove :func:`stale_paths` of ``name`` in ``parent``; returns what was removed."""
    stale = stale_paths(parent, name)
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale


def make_staging_dir(parent: PathLike, name: str, suffix: str) -> Path:
    """An empty folder ``parent/.<name>.<host>.<pid>.<random><suffix>`` to fill and then rename
    into place; stale ones of dead processes are removed first.

    Same parent, so the rename is atomic; usual permissions.
    """
    remove_stale(parent, name)
    path = Path(tempfile.mkdtemp(prefix=f".{name}.{_owner_tag()}.", suffix=suffix, dir=parent))
    _usual_mode(path, 0o777)
    return path


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed to ``path`` when the block succeeds and
    removed when it fails, so a reader never sees half a file. Stale ones are removed first."""
    path = Path(path)
    remove_stale(path.parent, path.name)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.{_owner_tag()}.", suffix=".tmp",
                                       dir=path.parent)
    os.close(handle)
    partial = Path(partial)
    try:
        yield partial
        _usual_mode(partial, 0o666)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _remove_empty_folders(top: Path) -> None:
    for folder, _, _ in os.walk(top, topdown=False):
        try:
            os.rmdir(folder)
        except OSError:  # not empty: something else lives there now
            pass


@contextmanager
def new_folder(path: PathLike) -> Iterator[Path]:
    """``path``, created with its missing parents; when the block fails, the folders created
    here are removed again if they are empty, so a failed load leaves no folder behind."""
    path = Path(path).absolute()
    top = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        top = folder
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        if top is not None:
            _remove_empty_folders(top)
        raise


class AtomicProcessing:
    """Mixin for a PyG dataset whose ``process()`` writes one processed file,
    ``processed_paths[0]``: it is written under a temporary name and renamed into place, so a
    process killed while processing leaves no half-written file that would later fail to load.

    List it before the dataset class: ``class Safe(AtomicProcessing, TUDataset)``.
    """

    _partial: Optional[str] = None

    @property
    def processed_file_names(self):
        # While processing, the dataset's own process() writes processed_paths[0]: the temporary.
        return self._partial or super().processed_file_names

    def process(self) -> None:
        final = Path(self.processed_dir) / super().processed_file_names
        with atomic_path(final) as partial:
            self._partial = partial.name
            try:
                super().process()
            finally:
                self._partial = None


def load_or_reprocess(processed: PathLike, load: Callable[[], T]) -> T:
    """``load()``; if that fails while the folder ``processed`` exists, it is removed, with a
    warning, and ``load()`` runs again, processing the raw files anew. An unreadable processed
    file (from a full disk, a crash, another library version) thus never blocks later loads."""
    processed = Path(processed)
    existed = processed.is_dir()
    try:
        return load()
    except Exception as error:
        if not existed:
            raise
        warnings.warn(f"{processed}: cannot be loaded ({type(error).__name__}: {error}); "
                      f"processing the raw files again", stacklevel=2)
        shutil.rmtree(processed)
    return load()
