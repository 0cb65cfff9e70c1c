"""Training runs: the loop, checkpoints, run folders, comparisons and their figures.

Names are imported on first use, so the command line reads :mod:`.defaults` without loading
torch_geometric.
"""
import importlib

_EXPORTS = {"TrainConfig": ".config", "Trainer": ".trainer", "build_model": ".trainer",
            "evaluate_run": ".run", "run_training": ".run"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
