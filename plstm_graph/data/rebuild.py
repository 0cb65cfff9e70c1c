"""Offline rebuild of OGB molecule datasets from MoleculeNet CSVs, file for file as OGB made them.

OGB's ``ogbg-mol*`` folders are MoleculeNet CSVs featurised with ``ogb.utils.smiles2graph`` and
split by Bemis-Murcko scaffold (:mod:`plstm_graph.data.scaffold`). :func:`rebuild_ogb` writes the
same folder: ``mapping/mol.csv.gz``, ``raw/{edge,edge-feat,node-feat,num-node-list,
num-edge-list,graph-label}.csv.gz``, ``split/scaffold/{train,valid,test}.csv.gz`` and
``RELEASE_v1.txt``. Each bond is stored once, (begin, end), and ogb adds the reverse edges when
it loads. Missing labels are empty fields (``""`` when a line has a single
field, since pandas skips blank lines), which ogb reads back as NaN. Files are gzip-compressed
as OGB's were (level 9, a sync flush before closing, the inner file name in the header), so
that for bace and bbbp every ``raw/`` and ``split/`` file equals OGB's byte for byte except the
4-byte timestamp, written as 0 here for reproducible output. ``mapping/mol.csv.gz`` holds the
labels, the SMILES and, as ``mol_id``, the CSV row (MoleculeNet's molecule names are not in
these CSVs).

The CSV must be the dataset's own: its first target column and its number of rows are checked
against OGB's (:data:`OGB_CSV_SIGNATURES`), so that e.g. bbbp's CSV cannot become
``ogbg_molbace``; ``limit`` takes only the first rows (quick checks) and ``force`` skips the
check (a CSV from elsewhere).

The folder is written under a temporary name in the same parent and renamed into place, so an
interrupted rebuild never leaves a folder that loads; the next rebuild removes what a killed
one left behind, and puts back a folder it was replacing.
"""
import gzip
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from plstm_graph.data.featurize import featurize
from plstm_graph.data.ogb import (OGB_MOLECULE_DATASETS, folder_name, ogb_meta, release_marker,
                                  suggested_root)
from plstm_graph.data.atomic import make_staging_dir, new_folder, stale_paths
from plstm_graph.data.root import PathLike, describe_roots, writable_root
from plstm_graph.data.scaffold import split_scaffold_groups
from plstm_graph.data.smiles_csv import SmilesTable, describe_rows, read_smiles_csv
from plstm_graph.graph.validation import check_positive_int


#: OGB's molecule count and the first label column of the MoleculeNet CSV (chemprop's and
#: MoleculeNet's own names) of each rebuildable dataset.
OGB_CSV_SIGNATURES: Dict[str, Tuple[int, Tuple[str, ...]]] = {
    "ogbg-molbace": (1513, ("Class",)),
    "ogbg-molbbbp": (2039, ("p_np",)),
    "ogbg-molclintox": (1477, ("FDA_APPROVED",)),
    "ogbg-molesol": (1128, ("logp", "measured log solubility in mols per litre")),
    "ogbg-molfreesolv": (642, ("freesolv", "expt")),
    "ogbg-molhiv": (41127, ("HIV_active",)),
    "ogbg-mollipo": (4200, ("lipo", "exp")),
    "ogbg-molsider": (1427, ("Hepatobiliary disorders",)),
    "ogbg-moltox21": (7831, ("NR-AR",)),
    "ogbg-moltoxcast": (8576, ("ACEA_T47D_80hr_Negative",)),
}


@dataclass
class RebuildReport:
    """What :func:`rebuild_ogb` wrote."""
    folder: Path
    num_graphs: int
    split_sizes: Dict[str, int]
    partially_sanitized: List[int] = field(default_factory=list)  # CSV rows
    seconds: float = 0.0


def write_gz(path: Path, text: str) -> None:
    """Write ``text`` gzip-compressed the way OGB's files were (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, \
            gzip.GzipFile(path.name, "wb", compresslevel=9, fileobj=raw, mtime=0) as out:
        out.write(text.encode())
        out.flush()


def _rows(array: np.ndarray) -> str:
    return pd.DataFrame(array).to_csv(header=False, index=False)


def write_ogb_folder(folder: Path, table: SmilesTable, graphs: Sequence[dict],
                     split: Dict[str, np.ndarray], marker: str) -> None:
    """Write OGB's files for ``graphs`` (``ogb.utils.smiles2graph`` dicts) into ``folder``."""
    labels = pd.DataFrame(table.targets)
    mapping = pd.DataFrame(table.targets, columns=table.target_columns)
    mapping["smiles"] = table.smiles
    mapping["mol_id"] = np.arange(len(table.smiles))
    write_gz(folder / "mapping" / "mol.csv.gz", mapping.to_csv(index=False))
    raw = folder / "raw"
    write_gz(raw / "graph-label.csv.gz", labels.to_csv(header=False, index=False))
    write_gz(raw / "num-node-list.csv.gz", _rows(np.array([g["num_nodes"] for g in graphs])))
    write_gz(raw / "num-edge-list.csv.gz", _rows(np.array([g["edge_index"].shape[1] // 2 for g in graphs])))
    write_gz(raw / "node-feat.csv.gz", _rows(np.concatenate([g["node_feat"] for g in graphs])))
    # smiles2graph lists each bond twice, (i, j) then (j, i); OGB stores the first of each pair.
    write_gz(raw / "edge.csv.gz", _rows(np.concatenate([g["edge_index"][:, ::2].T for g in graphs])))
    write_gz(raw / "edge-feat.csv.gz", _rows(np.concatenate([g["edge_feat"][::2] for g in graphs])))
    for part, index in split.items():
        write_gz(folder / "split" / "scaffold" / f"{part}.csv.gz", _rows(index))
    (folder / marker).write_text("")  # last: ogb treats a folder with the marker as complete


def check_csv_matches(name: str, csv: PathLike, table: SmilesTable, limit: Optional[int] = None) -> None:
    """Raise ``ValueError`` unless ``table`` (read from ``csv``) looks like dataset ``name``'s
    MoleculeNet CSV: its first label column, and its row count unless ``limit`` is given."""
    rows, columns = OGB_CSV_SIGNATURES[name]
    first = table.target_columns[0]
    if first not in columns:
        owners = [other for other, (_, names) in OGB_CSV_SIGNATURES.items() if first in names]
        looks = f"; it looks like {owners[0]}'s CSV" if owners else ""
        raise ValueError(f"{csv}: label column {first!r} is not {name}'s ({' or '.join(map(repr, columns))})"
                         f"{looks}. Pass the CSV of {name}, or force=True (--force) to rebuild anyway")
    if limit is None and len(table.smiles) != rows:
        raise ValueError(f"{csv}: {len(table.smiles)} molecules, but {name} has {rows}; OGB's "
                         f"indices and split need the same molecules. Pass the CSV of {name}, "
                         f"or force=True (--force) to rebuild anyway")


def _replace_folder(target: Path, write) -> None:
    """``write(staging)`` into a temporary folder beside ``target``, then rename it to ``target``
    (moving an existing ``target`` aside first, and back if that fails)."""
    staging = make_staging_dir(target.parent, target.name, ".tmp")
    replaced = None
    try:
        write(staging)
        if target.exists():
            replaced = make_staging_dir(target.parent, target.name, ".old")
            os.replace(target, replaced / target.name)
        os.replace(staging, target)
    except BaseException:
        if replaced is not None and not target.exists():  # put the old folder back
            os.replace(replaced / target.name, target)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)


def _restore_interrupted_overwrite(root: Path, target: Path) -> None:
    """A rebuild killed while replacing ``target`` left it in a ``.old`` folder: put it back."""
    for old in stale_paths(root, target.name):
        if old.suffix == ".old" and (old / target.name).is_dir() and not target.exists():
            os.replace(old / target.name, target)


def rebuild_ogb(name: str, csv: PathLike, root: Optional[PathLike] = None, *,
                smiles_column: Optional[str] = None, target_columns: Optional[Sequence[str]] = None,
                overwrite: bool = False, workers: Optional[int] = None, limit: Optional[int] = None,
                force: bool = False) -> RebuildReport:
    """Rebuild OGB's folder of dataset ``name`` in the first writable data root of ``root``
    from a MoleculeNet CSV.

    ``smiles_column`` / ``target_columns`` default as in :func:`read_smiles_csv`; the number of
    targets must equal OGB's task count, and the CSV must match the dataset
    (:func:`check_csv_matches`) unless ``force``. ``limit`` keeps only the first ``limit``
    molecules (a small folder for quick checks). Every molecule is kept (OGB's indices depend
    on it): SMILES that rdkit rejects only for valence are partially sanitised and listed in the
    report; unparseable ones raise ``ValueError`` naming their rows. An existing folder is
    replaced only with ``overwrite``. ``workers`` processes featurise the molecules (default:
    one per CPU).
    """
    start = time.perf_counter()
    ogb_meta(name)  # checks the name
    if OGB_MOLECULE_DATASETS[name] is None:
        raise ValueError(f"name: {name} has no MoleculeNet CSV to rebuild it from; it is download-only")
    if limit is not None:
        check_positive_int(limit, "limit")
    root_dir = writable_root(root)
    if root_dir is None:
        raise ValueError(f"root: no writable folder among {describe_roots(root)}; pass a writable "
                         f"one, e.g. --root {suggested_root(root)}")
    target = root_dir / folder_name(name)
    _restore_interrupted_overwrite(root_dir, target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
    table = read_smiles_csv(csv, smiles_column, target_columns)
    if limit is not None:
        table = table._replace(smiles=table.smiles[:limit], targets=table.targets[:limit])
    num_tasks = int(ogb_meta(name)["num tasks"])
    if len(table.target_columns) != num_tasks:  # ogb's loader needs it, even with force
        raise ValueError(f"target_columns: {name} has {num_tasks} task(s), but {csv} gives "
                         f"{len(table.target_columns)}: {table.target_columns}")
    if not force:
        check_csv_matches(name, csv, table, limit)
    molecules = featurize(table.smiles, workers=workers)
    invalid = [row for row, molecule in enumerate(molecules) if molecule is None]
    if invalid:
        raise ValueError(f"{csv}: cannot parse the SMILES in {len(invalid)} row(s): "
                         f"{describe_rows(table, invalid)}; OGB's indices need every molecule")
    graphs = [molecule.graph for molecule in molecules]
    split = split_scaffold_groups([molecule.scaffold for molecule in molecules])

    with new_folder(root_dir):  # a failed rebuild leaves no new empty root behind
        _replace_folder(target, lambda staging: write_ogb_folder(staging, table, graphs, split,
                                                                 release_marker(name)))
    return RebuildReport(
        folder=target, num_graphs=len(graphs),
        split_sizes={part: len(index) for part, index in split.items()},
        partially_sanitized=[row for row, molecule in enumerate(molecules) if molecule.partial],
        seconds=time.perf_counter() - start)
