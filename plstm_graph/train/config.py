"""The settings of one training run (saved as ``config.json`` in its run folder)."""
import dataclasses
from dataclasses import dataclass

from ..graph.validation import check_one_of, check_positive_int, check_probability
from ..nn.models import POOLINGS, split_model_options
from ..nn.registry import get_model, model_names
from .defaults import PRESETS, defaults_for
from .schedule import LR_SCHEDULES


def check_device(device: str) -> None:
    """``ValueError`` for a device this torch cannot use (checked before any work starts)."""
    import torch
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device: {device!r} is not a torch device ({error})") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for, but this torch has no usable CUDA "
                         f"(torch.cuda.is_available() is False); use --device cpu")


#: Settings added after runs were saved without them, and the value those runs trained with
#: (a preset's newer choice must not be read into them).
SETTINGS_BEFORE_THEY_EXISTED = {"dropout": 0.0, "lr_schedule": "batch"}


@dataclass
class TrainConfig:
    """Everything that determines a run; equal configs give equal runs (on the same machine).

    Settings left ``None`` are resolved from :func:`~plstm_graph.train.defaults.defaults_for`
    (the dataset family's and the model's defaults, then ``preset``); the resolved values are
    what ``config.json`` records. ``warmup_epochs`` defaults to 5 % of the epochs capped at 5
    (or at a family's or preset's value); ``lr_schedule`` steps the warm-up and cosine per
    batch (``"batch"``) or per epoch (``"epoch"``, the official pLSTM graph code's:
    :func:`~plstm_graph.train.schedule.epoch_warmup_cosine`);
    ``folds`` is how many folds of a k-fold dataset to run (``None``: fold 0 only); ``limit``
    cuts every split to its first ``limit`` graphs (quick checks).
    """

    dataset: str = "tpsa"
    model: str = "plstm"
    preset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    lr_schedule: str | None = None
    clip: float | None = None
    hidden: int | None = None
    layers: int | None = None
    heads: int | None = None
    pooling: str | None = None
    dropout: float | None = None
    model_options: dict | None = None
    seed: int = 0
    folds: int | None = None
    limit: int | None = None
    data_root: str | None = None
    device: str = "cpu"

    def __post_init__(self):
        check_one_of(self.model, "model", model_names())
        if self.preset is not None:
            check_one_of(self.preset, "preset", PRESETS)
        warmup_given = self.warmup_epochs is not None
        for name, value in defaults_for(self.dataset, self.model, self.preset).items():
            if name == "model_options" and self.model_options is not None:
                # The caller's options win; a preset's other options stay.
                self.model_options = {**value, **self.model_options}
            elif getattr(self, name) is None:
                setattr(self, name, value)
        if not warmup_given and self.warmup_epochs is not None:
            # A default warm-up (the TU protocol's 5 of 100 epochs) scales down with the run.
            self.warmup_epochs = min(self.warmup_epochs, 0.05 * self.epochs)
        model = self.model_spec()  # bad options (GraphModel's or the spec's) fail here
        if self.pooling is None:
            self.pooling = model.default_pooling
        check_one_of(self.pooling, "pooling", POOLINGS)
        for name in ("epochs", "batch_size", "hidden", "layers", "heads"):
            check_positive_int(getattr(self, name), name)
        for name in ("folds", "limit"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        check_probability(self.dropout, "dropout")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.warmup_epochs is None:
            self.warmup_epochs = min(5.0, 0.05 * self.epochs)
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], "
                             f"got {self.warmup_epochs!r}")
        check_one_of(self.lr_schedule, "lr_schedule", LR_SCHEDULES)
        check_device(self.device)
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ValueError(f"heads must divide hidden ({self.hidden}) into even sizes per head, "
                             f"got heads={self.heads}")

    def model_spec(self):
        """The registered model's spec with this run's options (GraphModel's own options, such
        as ``head``, left out)."""
        return get_model(self.model, **split_model_options(self.model_options)[1])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        # config.json of runs from before a setting existed: what those runs did.
        values = {**SETTINGS_BEFORE_THEY_EXISTED, **values}
        return cls(**{key: value for key, value in values.items() if key in known})
