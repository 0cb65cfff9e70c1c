"""Bemis-Murcko scaffold split, as OGB (after Hu et al., "Strategies for Pre-training GNNs") made it.

Molecules are grouped by ``MurckoScaffoldSmiles(includeChirality=True)``; groups are sorted
largest first (ties: the group whose first index is larger first), then each whole group goes to
train while train stays within 80% of the molecules, else to valid within 90%, else to test.
Index lists are returned sorted, as OGB's split files store them.
"""
from typing import Dict, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.rdBase import BlockLogs


def scaffold_smiles(mol: Chem.Mol) -> str:
    """The Bemis-Murcko scaffold of ``mol`` as SMILES with chirality ('' for acyclic molecules)."""
    try:
        with BlockLogs():
            return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=True)
    except (ValueError, RuntimeError):
        # Partially sanitised molecules (see molecule.py) fail rdkit's valence check inside
        # GetScaffoldForMol; the same decomposition with a lenient property update.
        scaffold = Chem.MurckoDecompose(mol)
        scaffold.UpdatePropertyCache(strict=False)
        Chem.GetSymmSSSR(scaffold)
        return Chem.MolToSmiles(scaffold, isomericSmiles=True)


def _check_fractions(frac_train: float, frac_valid: float) -> None:
    if not (0 < frac_train and 0 <= frac_valid and frac_train + frac_valid <= 1):
        raise ValueError(
            f"frac_train, frac_valid: expected 0 < frac_train, 0 <= frac_valid and a sum <= 1, "
            f"got {frac_train} and {frac_valid}")


def scaffold_split(mols: Sequence[Chem.Mol], frac_train: float = 0.8,
                   frac_valid: float = 0.1) -> Dict[str, np.ndarray]:
    """``{"train", "valid", "test"}`` -> sorted int64 indices into ``mols`` (see module docstring)."""
    return split_scaffold_groups([scaffold_smiles(mol) for mol in mols], frac_train, frac_valid)


def split_scaffold_groups(scaffolds: Sequence[str], frac_train: float = 0.8,
                          frac_valid: float = 0.1) -> Dict[str, np.ndarray]:
    """:func:`scaffold_split` from precomputed :func:`scaffold_smiles` of each molecule."""
    _check_fractions(frac_train, frac_valid)
    groups: Dict[str, list] = {}
    for i, scaffold in enumerate(scaffolds):
        groups.setdefault(scaffold, []).append(i)
    ordered = sorted(groups.values(), key=lambda group: (len(group), group[0]), reverse=True)
    train_cutoff = frac_train * len(scaffolds)
    valid_cutoff = (frac_train + frac_valid) * len(scaffolds)
    train, valid, test = [], [], []
    for group in ordered:
        if len(train) + len(group) <= train_cutoff:
            train += group
        elif len(train) + len(valid) + len(group) <= valid_cutoff:
            valid += group
        else:
            test += group
    return {key: np.array(sorted(part), dtype=np.int64)
            for key, part in (("train", train), ("valid", valid), ("test", test))}


def random_split(num_items: int, frac_train: float = 0.8, frac_valid: float = 0.1,
                 seed: int = 0) -> Dict[str, np.ndarray]:
    """A seeded random split of ``range(num_items)`` with the same sizes rule as
    :func:`scaffold_split` (train and valid rounded down, test gets the rest)."""
    _check_fractions(frac_train, frac_valid)
    order = np.random.default_rng(seed).permutation(num_items)
    n_train = int(frac_train * num_items)
    n_valid = int((frac_train + frac_valid) * num_items) - n_train
    parts = order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:]
    return {key: np.sort(part).astype(np.int64) for key, part in zip(("train", "valid", "test"), parts)}
