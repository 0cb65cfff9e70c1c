"""Dataset names -> loaders: the one entry point training code uses.

``get_dataset(name, root=None, **kw)`` returns a :class:`BenchmarkDataset`. Names: the OGB
molecule sets (``ogbg-molbace``, ...), the TU sets of the pLSTM paper available offline
(``MUTAG``, ``NCI1``, ``PROTEINS``, ``PTC_MR``), ``tu:NAME`` for any other TU dataset, and the
embedded default ``tpsa``, the directed data ``enas`` (architecture DAGs), ``sst`` and
``sst-binary`` (sentiment trees, node-level labels), and the generated arrow-pointing images
``ape-<size>[-p<patch>][-d<downsample>]`` (e.g. ``ape-64``, ``ape-192-p32-d1``, see
:mod:`plstm_graph.data.ape`), and the generated long-range
look-ups ``longrange-<kind>-<depth>`` (e.g. ``longrange-dag-16``, ``longrange-tree-64``, see
:mod:`plstm_graph.data.longrange`). Keyword arguments go to the loader (``download``, ``transform``).
"""
from functools import partial
from typing import Callable, Dict, List, Optional

from plstm_graph.data.ape import load_ape, parse_ape_spec
from plstm_graph.data.benchmark import BenchmarkDataset
from plstm_graph.data.enas import load_enas
from plstm_graph.data.longrange import load_longrange, parse_longrange_name
from plstm_graph.data.ogb import OGB_MOLECULE_DATASETS, load_ogb
from plstm_graph.data.root import PathLike
from plstm_graph.data.sst import load_sst
from plstm_graph.data.tpsa import load_tpsa
from plstm_graph.data.tu import TU_DATASETS, load_tu

#: The dataset the main job trains on when none is named.
DEFAULT_DATASET = "tpsa"
TU_PREFIX = "tu:"

_LOADERS: Dict[str, Callable[..., BenchmarkDataset]] = {
    **{name: partial(load_ogb, name) for name in OGB_MOLECULE_DATASETS},
    **{name: partial(load_tu, name) for name in TU_DATASETS},
    "tpsa": load_tpsa,
    "enas": load_enas,
    "sst": load_sst,
    "sst-binary": partial(load_sst, binary=True),
    "ape-64": partial(load_ape, 64),  # every ape-<size> works (get_dataset); this one is listed
}


def dataset_names() -> List[str]:
    """Sorted names accepted by :func:`get_dataset` (besides ``tu:NAME``)."""
    return sorted(_LOADERS)


def get_dataset(name: str, root: Optional[PathLike] = None, **kwargs) -> BenchmarkDataset:
    """Load dataset ``name`` from the data root ``root`` (see :mod:`plstm_graph.data.root`).

    Raises ``ValueError`` for an unknown name (listing the valid ones) and
    :class:`~plstm_graph.data.errors.DatasetNotFoundError` (a ``FileNotFoundError``) when the
    data is not on disk and cannot be downloaded, saying how to rebuild it or where to put it.
    """
    if isinstance(name, str) and name.startswith(TU_PREFIX):
        return load_tu(name[len(TU_PREFIX):], root=root, **kwargs)
    ape = parse_ape_spec(name) if isinstance(name, str) else None
    if ape is not None:
        return load_ape(**ape, root=root, **kwargs)
    if parse_longrange_name(name) is not None:
        return load_longrange(name, root=root, **kwargs)
    if name not in _LOADERS:
        raise ValueError(f"name: unknown dataset {name!r}; valid names: {', '.join(dataset_names())} "
                         f"(or {TU_PREFIX}NAME for any TU dataset)")
    return _LOADERS[name](root=root, **kwargs)
