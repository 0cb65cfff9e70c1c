"""C kernels built on first use with the system's C compiler (``$CC``, else ``cc``), once per
source, scalar type and kind of CPU, into a cache folder (``$PLSTM_GRAPH_KERNEL_CACHE``, else
``~/.cache/plstm_graph/kernels``), and loaded with :mod:`ctypes`.

``PLSTM_GRAPH_NO_COMPILE=1`` switches every compiled kernel off; their callers then keep their
PyTorch paths.
"""
import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from ..data.atomic import atomic_path

#: Headers shared by the kernels' sources (``#include "scalar.h"``).
INCLUDE = Path(__file__).with_name("csrc")
#: No -ffast-math: NaN and inf must travel as in the references.
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=c99", f"-I{INCLUDE}")
#: The torch dtypes the kernels are built for, and the C type of each.
SCALARS = {torch.float32: "float", torch.float64: "double"}
#: Per scalar type, what the C code is told about it (AVX2 paths differ by lane count).
SCALAR_DEFINES = {"float": ("-DSCALAR=float", "-DSCALAR_IS_FLOAT=1"),
                  "double": ("-DSCALAR=double",)}
INT, PTR = ctypes.c_int64, ctypes.c_void_p


def switched_off() -> Optional[str]:
    """Why compiled kernels must not run (``PLSTM_GRAPH_NO_COMPILE`` set), else ``None``."""
    if os.environ.get("PLSTM_GRAPH_NO_COMPILE", "") not in ("", "0"):
        return "PLSTM_GRAPH_NO_COMPILE is set"
    return None


def cache_dir() -> Path:
    if "PLSTM_GRAPH_KERNEL_CACHE" in os.environ:
        return Path(os.environ["PLSTM_GRAPH_KERNEL_CACHE"])
    home_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    folder = Path(home_cache) / "plstm_graph" / "kernels"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    # e.g. a read-only home: a private folder in the temporary one, which other users must not
    # be able to fill with libraries this process would load.
    uid = os.getuid() if hasattr(os, "getuid") else None
    owner = uid if uid is not None else "user"
    folder = Path(tempfile.gettempdir()) / f"plstm_graph_kernels_{owner}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if uid is not None and (folder.stat().st_uid != uid or folder.stat().st_mode & 0o022):
        raise RuntimeError(f"{folder} belongs to another user or is writable by others")
    return folder


#: Lines of /proc/cpuinfo that tell kinds of CPU apart (x86: flags, model; ARM: Features, part).
_CPU_FIELDS = ("flags", "model name", "Features", "CPU implementer", "CPU part")


def _cpu_flags() -> str:
    """The CPU's kind and features (-march=native builds for them), so that a cache folder
    shared by different machines keeps one build per kind of CPU."""
    try:
        with open("/proc/cpuinfo") as lines:
            fields = {line.split(":")[0].strip(): line for line in lines
                      if line.split(":")[0].strip() in _CPU_FIELDS}
        return "".join(fields[name] for name in _CPU_FIELDS if name in fields)
    except OSError:
        return f"{platform.processor()} {platform.platform()}"


def compiler() -> Optional[List[str]]:
    """The C compiler's command (``$CC``, split like a shell, else ``cc`` or ``gcc``), or
    ``None`` when there is none."""
    found = shutil.which("cc") or shutil.which("gcc")
    return shlex.split(os.environ.get("CC", "")) or ([found] if found else None)


def build(source: Path, scalar: str) -> Path:
    """The shared library of ``source`` for ``scalar`` (``"float"`` or ``"double"``), compiled
    unless the cache holds it. Raises ``RuntimeError`` when it cannot be built."""
    command = compiler()
    if command is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc or clang)")
    # The shared headers and any beside the source: a change to one rebuilds.
    headers = [header.read_bytes() for folder in (INCLUDE, source.parent)
               for header in sorted(folder.glob("*.h"))]
    key = hashlib.sha256(b"\0".join([source.read_bytes(), *headers, " ".join(FLAGS).encode(),
                                     " ".join(command).encode(),
                                     " ".join(SCALAR_DEFINES[scalar]).encode(),
                                     platform.machine().encode(),
                                     _cpu_flags().encode()])).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}_{scalar}_{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed: concurrent processes never load a half-written file.
    with atomic_path(target) as partial:
        try:
            result = subprocess.run([*command, *FLAGS, *SCALAR_DEFINES[scalar], str(source), "-o",
                                     str(partial)], capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"{' '.join(command)} could not build {source.name}: {error}")
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed on {source.name}:\n"
                               f"{result.stderr.strip()}")
    return target


def load(source: Path, scalar: str, signatures: Dict[str, list]) -> ctypes.CDLL:
    """``source`` built for ``scalar`` and loaded, its functions (``signatures``: name ->
    argument types) returning nothing. Callers cache it, as an imported module."""
    lib = ctypes.CDLL(str(build(source, scalar)))
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes, getattr(lib, name).restype = argtypes, None
    return lib


def load_error(library: Callable[[str], ctypes.CDLL]) -> Optional[str]:
    """Why ``library(scalar)`` cannot give a loaded kernel for every scalar type here (or why
    compiled kernels must not run), or ``None`` when it can. Callers cache the answer once per
    process, as they cache the library: ``PLSTM_GRAPH_NO_COMPILE`` counts when first asked."""
    reason = switched_off()
    if reason is not None:
        return reason
    try:
        for scalar in SCALARS.values():
            library(scalar)
    except (OSError, RuntimeError, AttributeError) as error:  # AttributeError: a missing symbol
        return str(error)
    return None


def pointers(*tensors: torch.Tensor) -> List[int]:
    """Addresses of the tensors' first elements, for the C code."""
    return [t.data_ptr() for t in tensors]


__all__ = ["FLAGS", "INCLUDE", "INT", "PTR", "SCALARS", "SCALAR_DEFINES", "build", "cache_dir",
           "compiler", "load", "load_error", "pointers", "switched_off"]
