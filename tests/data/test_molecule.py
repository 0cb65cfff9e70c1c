import numpy as np
import pytest
from ogb.utils import smiles2graph

from plstm_graph.data.molecule import (
    is_partially_sanitized, mol_to_graph, parse_smiles, smiles_to_graph)

SMILES = [
    "Cl[C@H](/C=C/C)Br",                            # stereo bond and chiral centre
    "[Cl].CC(C)NCC(O)COc1cccc2ccccc12",             # a bond-less fragment first
    "O1CC[C@@H](NC(=O)[C@@H](Cc2cc3cc(ccc3nc2N)-c2ccccc2C)C)CC1(C)C",
    "[Na+].[Cl-]",                                  # no bonds at all
    "C",
]


def assert_same_graph(mine, theirs):
    assert mine.keys() == theirs.keys()
    for key in ("edge_index", "edge_feat", "node_feat"):
        assert mine[key].dtype == theirs[key].dtype == np.int64
        np.testing.assert_array_equal(mine[key], theirs[key])
    assert mine["num_nodes"] == theirs["num_nodes"]


@pytest.mark.parametrize("smiles", SMILES)
def test_graph_matches_ogb_smiles2graph(smiles):
    assert_same_graph(smiles_to_graph(smiles), smiles2graph(smiles))


@pytest.mark.parametrize("padded", [" CCO", "CCO ", "\tCCO\n", "  CCO  "])
def test_surrounding_whitespace_does_not_change_the_graph(padded):
    assert_same_graph(smiles_to_graph(padded), smiles2graph("CCO"))


def test_unparseable_smiles_give_none_and_a_named_error():
    for bad in ["C1CC", "not a smiles", "", "   ", None]:
        assert parse_smiles(bad) is None
    with pytest.raises(ValueError, match="smiles: cannot parse 'C1CC'"):
        smiles_to_graph("C1CC")


def test_valence_failures_are_kept_by_partial_sanitisation():
    # An HIV molecule that rdkit >= 2024.9 rejects (hexavalent Al); rdkit 2024.3 and OGB kept it.
    smiles = "O=C1O[Al]23(OC1=O)(OC(=O)C(=O)O2)OC(=O)C(=O)O3"
    assert parse_smiles(smiles, partial_sanitization=False) is None
    mol = parse_smiles(smiles)
    assert mol is not None and is_partially_sanitized(mol)
    assert not is_partially_sanitized(parse_smiles("CCO"))
    graph = mol_to_graph(mol)
    assert graph["num_nodes"] == mol.GetNumAtoms() == 19
    assert graph["edge_index"].shape == (2, 2 * mol.GetNumBonds())
    assert graph["node_feat"][3, 0] == 12  # aluminium: atomic number 13 at index 12
