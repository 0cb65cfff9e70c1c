"""The pLSTM operator on a :class:`~plstm_graph.LineGraph`, with interchangeable backends.

``naive`` holds the readable references (the per-edge loop and the dense gating-matrix form),
``levels`` the level-batched sweep with its explicit backward, ``parallel`` the per-graph
gating-matrix form on padded blocks, ``mixed`` those two on the small and the large graphs of
one batch, ``compiled`` the recurrence as a C sweep (``csrc/plstm_sweep.c``, built on first
use; the CPU default where it builds); ``schedule`` and ``blocks`` hold the layouts derived from
a line graph (once per graph). :func:`plstm` checks its arguments and dispatches.
"""
import importlib.util

from .dispatch import (AUTO_PREFERENCES, BACKENDS, PARALLEL_MAX_EDGES, auto_backend, plstm,
                       register_backend)
from .levels import LevelsPLSTM, levels_backward, levels_forward, plstm_levels
from .naive import direct_term, plstm_dense, plstm_reference
from .parallel import plstm_parallel

# Backends in their own modules register themselves on import (register_backend); auto asks
# the latest registered first: the compiled sweep (any CPU graph, where it builds), then grid
# line graphs, then batches of small and large graphs.
from .mixed import plstm_mixed  # noqa: E402

if importlib.util.find_spec(f"{__name__}.grid") is not None:
    from . import grid  # noqa: F401
from .compiled import plstm_compiled  # noqa: E402

__all__ = ["AUTO_PREFERENCES", "BACKENDS", "LevelsPLSTM", "PARALLEL_MAX_EDGES", "auto_backend",
           "direct_term", "levels_backward", "levels_forward", "plstm", "plstm_compiled",
           "plstm_dense", "plstm_levels", "plstm_mixed", "plstm_parallel", "plstm_reference",
           "register_backend"]
