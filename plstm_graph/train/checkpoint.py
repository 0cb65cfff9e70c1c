"""Atomic checkpoint files and the random-number-generator states a resumed run needs."""
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


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


def write_json(obj, path) -> None:
    """Pretty JSON, atomically."""
    write_text(json.dumps(obj, indent=2) + "\n", path)


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
