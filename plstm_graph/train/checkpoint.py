"""Atomic checkpoint files and the random-number-generator states a resumed run needs."""
import json
import math
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    # Write beside the target, then rename: a crash or Ctrl-C leaves the old file or the new
    # one, never a truncated one (os.replace is atomic on POSIX and Windows).
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the file the mode any other new file gets.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(obj, path) -> None:
    """``torch.save(obj, path)``, atomically."""
    _atomic_write(path, lambda handle: torch.save(obj, handle))


def load_checkpoint(path, map_location="cpu"):
    return torch.load(path, map_location=map_location, weights_only=False)


def write_text(text: str, path) -> None:
    """``Path(path).write_text(text)``, atomically."""
    _atomic_write(path, lambda handle: handle.write(text.encode()))


def json_safe(value):
    """NaN and infinities as ``null``, so every JSON file of a run is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def json_line(record: dict) -> str:
    """One ``.jsonl`` line (strict JSON: NaN as ``null``)."""
    return json.dumps(json_safe(record), allow_nan=False) + "\n"


def write_json(obj, path) -> None:
    """Pretty, strict JSON (NaN as ``null``), atomically."""
    write_text(json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n", path)


def read_json(path):
    return json.loads(Path(path).read_text())


def rng_states(generator: torch.Generator | None = None) -> dict:
    """Every random state a training epoch consumes (the shuffling generator included)."""
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        states["generator"] = generator.get_state()
    return states


def set_rng_states(states: dict, generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if generator is not None and "generator" in states:
        generator.set_state(states["generator"])


