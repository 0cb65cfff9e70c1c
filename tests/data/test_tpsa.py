import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from plstm_graph.data import DEFAULT_DATASET, TPSA_CSV, get_dataset
from plstm_graph.data.scaffold import scaffold_smiles


def test_embedded_tpsa_default_loads_with_a_scaffold_split(tmp_path):
    assert DEFAULT_DATASET == "tpsa"
    ds = get_dataset("tpsa", root=tmp_path / "unused", download=False)  # the loaders' common keywords
    assert (ds.name, ds.task_type, ds.num_tasks, ds.metric) == ("tpsa", "regression", 1, "rmse")
    assert (ds.higher_is_better, ds.features, ds.num_folds) == (False, "ogb", 1)
    assert len(ds.dataset) == 4999 and (ds.num_node_features, ds.num_edge_features) == (9, 3)
    table = pd.read_csv(TPSA_CSV, skiprows=1, header=None, names=["smiles", "tpsa"])  # first line: a comment
    np.testing.assert_allclose(ds.dataset.y[:, 0].numpy(), table["tpsa"].to_numpy(dtype=np.float32))
    split = ds.split()
    assert {k: len(v) for k, v in split.items()} == {"train": 3999, "valid": 500, "test": 500}
    # Whole scaffold groups per part: no scaffold in both train and test.
    scaffold = {}
    for part in ("train", "test"):
        mols = (Chem.MolFromSmiles(table["smiles"][i]) for i in split[part].tolist())
        scaffold[part] = {scaffold_smiles(m) for m in mols if m is not None}
    assert not scaffold["train"] & scaffold["test"]
    assert ds.evaluate(ds.dataset.y[:50], ds.dataset.y[:50] + 2.0) == pytest.approx(2.0)
