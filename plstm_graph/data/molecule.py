"""SMILES to molecular graphs with OGB's atom and bond features.

:func:`smiles_to_graph` is ``ogb.utils.smiles2graph`` (same features from
``ogb.utils.features``, same atom and bond order) with two changes, both needed to rebuild OGB's
datasets with a current rdkit:

* surrounding whitespace is stripped first: rdkit reads text after a space as the molecule's
  name, so ``"CCO "`` and ``"CCO"`` are the same molecule, but a leading tab or newline is not
  always harmless;
* SMILES that rdkit >= 2024.9 rejects only for a valence rule (hypervalent Al, B, Ge, ... that
  older releases, and therefore OGB, accepted) are kept by partial sanitisation: every
  sanitisation step except the valence check. :func:`is_partially_sanitized` marks them.
"""
from typing import Dict, Optional

import numpy as np
from ogb.utils.features import atom_to_feature_vector, bond_to_feature_vector
from rdkit import Chem
from rdkit.rdBase import BlockLogs

#: Number of OGB atom / bond feature columns (inputs of ogb's AtomEncoder / BondEncoder).
NUM_ATOM_FEATURES = 9
NUM_BOND_FEATURES = 3

_PARTIAL = "plstm_graph_partial_sanitization"
_LENIENT_OPS = Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES


def parse_smiles(smiles: str, partial_sanitization: bool = True) -> Optional[Chem.Mol]:
    """The rdkit molecule of ``smiles``, or ``None`` if it cannot be parsed.

    With ``partial_sanitization``, a SMILES that fails only rdkit's valence check is parsed
    without it (see the module docstring); empty strings and syntax errors give ``None``.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    smiles = smiles.strip()
    with BlockLogs():  # failures are reported by the caller, with row numbers
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None or not partial_sanitization:
            return mol
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return None
        mol.UpdatePropertyCache(strict=False)
        if Chem.SanitizeMol(mol, _LENIENT_OPS, catchErrors=True) != Chem.SanitizeFlags.SANITIZE_NONE:
            return None
    mol.SetBoolProp(_PARTIAL, True)
    return mol


def is_partially_sanitized(mol: Chem.Mol) -> bool:
    """Whether :func:`parse_smiles` needed partial sanitisation for ``mol``."""
    return mol.HasProp(_PARTIAL)


def mol_to_graph(mol: Chem.Mol) -> Dict[str, np.ndarray]:
    """OGB's graph dict of an rdkit molecule, exactly as ``ogb.utils.smiles2graph`` builds it.

    Returns ``edge_index`` [2, 2B] (each bond as (begin, end) then (end, begin)), ``edge_feat``
    [2B, 3], ``node_feat`` [N, 9] (all int64) and ``num_nodes`` N.
    """
    node_feat = np.array([atom_to_feature_vector(atom) for atom in mol.GetAtoms()], dtype=np.int64)
    node_feat = node_feat.reshape(-1, NUM_ATOM_FEATURES)
    edges, edge_feat = [], []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        feature = bond_to_feature_vector(bond)
        edges += [(i, j), (j, i)]
        edge_feat += [feature, feature]
    return {
        "edge_index": np.array(edges, dtype=np.int64).reshape(-1, 2).T,
        "edge_feat": np.array(edge_feat, dtype=np.int64).reshape(-1, NUM_BOND_FEATURES),
        "node_feat": node_feat,
        "num_nodes": len(node_feat),
    }


def smiles_to_graph(smiles: str, partial_sanitization: bool = True) -> Dict[str, np.ndarray]:
    """:func:`mol_to_graph` of :func:`parse_smiles`; ``ValueError`` if ``smiles`` does not parse."""
    mol = parse_smiles(smiles, partial_sanitization)
    if mol is None:
        raise ValueError(f"smiles: cannot parse {smiles!r}")
    return mol_to_graph(mol)
