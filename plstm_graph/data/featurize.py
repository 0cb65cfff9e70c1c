"""Featurise many SMILES at once: OGB graph, scaffold and sanitisation flag per molecule.

rdkit work is CPU-bound and per molecule, so large inputs (ogbg-molhiv's 41127 SMILES) are
spread over worker processes; results come back in input order. Workers end with the process
that started them: a parent killed by SIGKILL or SIGTERM cannot shut its pool down, and its
workers would otherwise wait for work forever.
"""
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from plstm_graph.data.molecule import is_partially_sanitized, mol_to_graph, parse_smiles
from plstm_graph.data.scaffold import scaffold_smiles

#: Inputs smaller than this are featurised in-process (a pool costs more than it saves).
PARALLEL_MIN = 2000
#: Seconds between a worker's checks that its parent is alive.
PARENT_POLL = 0.2


class Molecule(NamedTuple):
    graph: Dict[str, np.ndarray]   # mol_to_graph's dict
    scaffold: str                  # scaffold_smiles
    partial: bool                  # needed partial sanitisation


def featurize_one(smiles: str, partial_sanitization: bool = True) -> Optional[Molecule]:
    """:class:`Molecule` of ``smiles``, or ``None`` if it cannot be parsed."""
    mol = parse_smiles(smiles, partial_sanitization)
    if mol is None:
        return None
    return Molecule(mol_to_graph(mol), scaffold_smiles(mol), is_partially_sanitized(mol))


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:  # an orphan is re-parented, so its parent id changes
        time.sleep(PARENT_POLL)
    os._exit(1)


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: end this worker as soon as ``parent`` is gone."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _featurize_chunk(args) -> List[Optional[Molecule]]:
    smiles, partial_sanitization = args
    return [featurize_one(s, partial_sanitization) for s in smiles]


def featurize(smiles: Sequence[str], partial_sanitization: bool = True,
              workers: Optional[int] = None) -> List[Optional[Molecule]]:
    """:func:`featurize_one` of every SMILES, over ``workers`` processes (default: one per CPU)."""
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers: expected a positive number, got {workers}")
    if workers == 1 or len(smiles) < PARALLEL_MIN:
        return _featurize_chunk((smiles, partial_sanitization))
    size = -(-len(smiles) // (4 * workers))  # a few chunks per worker evens out their speeds
    chunks = [(list(smiles[i:i + size]), partial_sanitization) for i in range(0, len(smiles), size)]
    # fork where there is one, as torch's DataLoader does: workers start at once, without
    # re-importing torch; they run only rdkit and numpy.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_with_parent,
                             initargs=(os.getpid(),)) as pool:
        return [molecule for chunk in pool.map(_featurize_chunk, chunks) for molecule in chunk]
