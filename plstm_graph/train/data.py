"""The graphs of a run: a dataset's splits, prepared once for the chosen model."""
from dataclasses import dataclass

from torch import Tensor
from torch_geometric.data import Data

from ..graph.transform import PrepareDAG


class PreparedGraphs:
    """``dataset[i]`` through ``transform``, computed on first use and kept: the D-mode pruning
    of :class:`~plstm_graph.PrepareDAG` then runs once per graph, not once per epoch (or per
    fold, or per seed, when several runs share the object)."""

    def __init__(self, dataset, transform=None):
        self.dataset, self.transform = dataset, transform
        self._cache: dict[int, Data] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Data:
        index = int(index)
        if index not in self._cache:
            data = self.dataset[index]
            self._cache[index] = self.transform(data) if self.transform is not None else data
        return self._cache[index]

    def take(self, indices: Tensor, limit: int | None = None) -> list[Data]:
        indices = (indices[:limit] if limit else indices).tolist()
        missing = [i for i in dict.fromkeys(indices) if i not in self._cache]
        if missing and isinstance(self.transform, PrepareDAG):  # many graphs per sweep
            prepared = self.transform.forward_many([self.dataset[i] for i in missing])
            self._cache.update(zip(missing, prepared))
        return [self[i] for i in indices]


class DataCache:
    """Datasets and their prepared graphs, kept for the runs that share this object (a
    comparison's models and seeds) instead of in process-wide caches."""

    def __init__(self):
        self._datasets: dict = {}
        self._graphs: dict = {}

    def dataset(self, name: str, root=None):
        """:func:`plstm_graph.data.get_dataset`, loaded once per cache."""
        key = (name, None if root is None else str(root))
        if key not in self._datasets:
            from ..data import get_dataset
            self._datasets[key] = get_dataset(name, root=root)
        return self._datasets[key]

    def graphs(self, spec, transform) -> PreparedGraphs:
        """``spec.dataset`` prepared by ``transform`` (one object per distinct transform)."""
        key = (id(spec), repr(transform))
        if key not in self._graphs:
            self._graphs[key] = (spec, PreparedGraphs(spec.dataset, transform))
        return self._graphs[key][1]


@dataclass
class Splits:
    train: list
    valid: list
    test: list

    def __iter__(self):
        return iter((("train", self.train), ("valid", self.valid), ("test", self.test)))


def make_splits(spec, graphs: PreparedGraphs, fold: int | None = None,
                limit: int | None = None) -> Splits:
    """The train / valid / test graphs of ``spec.split(fold)``, each cut to ``limit`` graphs."""
    split = spec.split(fold)
    return Splits(*(graphs.take(split[name], limit) for name in ("train", "valid", "test")))
