"""The embedded default: rdkit's ``Data/NCI/first_5k.tpsa.csv``, present wherever rdkit is.

4999 NCI molecules with their topological polar surface area (TPSA, in square angstroms,
computed with Daylight's tools and Ertl's tpsa.c): one regression target, OGB features, scaffold
split, metric RMSE (the metric OGB uses for its regression sets ESOL, FreeSolv and Lipophilicity).
The file starts with a comment line and has no header. The eight SMILES that rdkit >= 2024.9
rejects for valence (hypervalent Al, Be, Si, P, N and O) are kept by partial sanitisation.
"""
from pathlib import Path
from typing import Callable, Optional

import rdkit

from plstm_graph.data.benchmark import BenchmarkDataset
from plstm_graph.data.root import PathLike
from plstm_graph.data.smiles_csv import load_smiles_csv

#: The CSV inside the installed rdkit package.
TPSA_CSV = Path(rdkit.__file__).parent / "Data" / "NCI" / "first_5k.tpsa.csv"


def load_tpsa(root: Optional[PathLike] = None, download: bool = True,
              transform: Optional[Callable] = None) -> BenchmarkDataset:
    """The TPSA regression set. ``root`` and ``download`` are accepted for the loaders' common
    signature and not needed: the data ships with rdkit, only the processed cache is written."""
    if not TPSA_CSV.is_file():
        raise FileNotFoundError(f"{TPSA_CSV}: missing from the installed rdkit package")
    return load_smiles_csv(TPSA_CSV, "smiles", ["tpsa"], task_type="regression", metric="rmse",
                           csv_options={"header": None, "skiprows": 1, "names": ["smiles", "tpsa"]},
                           name="tpsa", transform=transform)
