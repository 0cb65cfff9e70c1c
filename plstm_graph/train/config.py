"""The settings of one training run (saved as ``config.json`` in its run folder)."""
import dataclasses
from dataclasses import dataclass

from ..nn.models import MIXERS, POOLINGS

#: Pooling per model when not given: the pLSTM paper pools pLSTM by mean, baselines by sum.
DEFAULT_POOLING = {"plstm": "mean", "attention": "mean", "gin": "sum", "gcn": "sum", "gat": "sum"}


@dataclass
class TrainConfig:
    """Everything that determines a run; equal configs give equal runs (on the same machine).

    ``warmup_epochs`` defaults to 5 % of the epochs capped at 5 (the TU protocol's 5 of 100);
    ``folds`` is how many folds of a k-fold dataset to run (``None``: fold 0 only);
    ``limit`` cuts every split to its first ``limit`` graphs (quick checks).
    """

    dataset: str = "tpsa"
    model: str = "plstm"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_epochs: float | None = None
    clip: float = 1.0
    hidden: int = 64
    layers: int = 4
    heads: int = 4
    pooling: str | None = None
    seed: int = 0
    folds: int | None = None
    limit: int | None = None
    data_root: str | None = None
    device: str = "cpu"

    def __post_init__(self):
        if self.model not in MIXERS:
            raise ValueError(f"model must be one of {', '.join(MIXERS)}; got {self.model!r}")
        if self.pooling is None:
            self.pooling = DEFAULT_POOLING[self.model]
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        for name in ("epochs", "batch_size", "hidden", "layers", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("folds", "limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.warmup_epochs is None:
            self.warmup_epochs = min(5.0, 0.05 * self.epochs)
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], "
                             f"got {self.warmup_epochs!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
