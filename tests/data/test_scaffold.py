import numpy as np
import pytest
from rdkit import Chem

from plstm_graph.data.scaffold import random_split, scaffold_smiles, scaffold_split


def test_scaffold_keeps_rings_and_linkers():
    assert scaffold_smiles(Chem.MolFromSmiles("Cc1cc(Oc2nccc(CCC)c2)ccc1")) == "c1ccc(Oc2ccccn2)cc1"
    assert scaffold_smiles(Chem.MolFromSmiles("CCO")) == ""


def test_scaffold_split_assigns_whole_groups_largest_first():
    # 10 molecules: 5 benzenes, 3 pyridines, 1 cyclohexane, 1 acyclic.
    smiles = ["c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "c1ccccc1CC", "c1ccccc1Cl",
              "c1ccncc1C", "c1ccncc1O", "c1ccncc1N", "C1CCCCC1C", "CCCO"]
    split = scaffold_split([Chem.MolFromSmiles(s) for s in smiles], frac_train=0.8, frac_valid=0.1)
    # Benzenes (5) then pyridines (3) fill train to 8; of the two singletons, the one with the
    # larger first index comes first (OGB's tie rule) and goes to valid.
    np.testing.assert_array_equal(split["train"], np.arange(8))
    np.testing.assert_array_equal(split["valid"], [9])
    np.testing.assert_array_equal(split["test"], [8])


def test_random_split_is_seeded_and_partitions():
    a, b, c = random_split(101, seed=3), random_split(101, seed=3), random_split(101, seed=4)
    assert {k: len(v) for k, v in a.items()} == {"train": 80, "valid": 10, "test": 11}
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])
    np.testing.assert_array_equal(np.sort(np.concatenate(list(a.values()))), np.arange(101))


@pytest.mark.parametrize("fractions", [(0.0, 0.1), (0.9, 0.2), (0.8, -0.1)])
def test_bad_fractions_are_rejected(fractions):
    with pytest.raises(ValueError, match="frac_train, frac_valid"):
        random_split(10, *fractions)
