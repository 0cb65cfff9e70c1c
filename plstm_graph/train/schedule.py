"""Learning-rate schedules: linear warm-up, then cosine decay, stepped per batch or per epoch."""
import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler,
                                      SequentialLR)

#: How the schedule is stepped: ``"batch"`` (:func:`warmup_cosine`, this library's default) or
#: ``"epoch"`` (:func:`epoch_warmup_cosine`, the official pLSTM graph code's).
LR_SCHEDULES = ("batch", "epoch")


def warmup_cosine(optimizer: Optimizer, warmup_steps: int, total_steps: int) -> LRScheduler:
    r"""Multiplies the learning rate by :math:`(s + 1) / w` for the first :math:`w` steps, then by
    :math:`\tfrac12 (1 + \cos(\pi (s - w) / (T - w)))`: torch's ``LinearLR`` then
    ``CosineAnnealingLR``, chained by ``SequentialLR``."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=0.0)
    if warmup_steps == 0:
        return cosine
    warmup = LinearLR(optimizer, start_factor=1.0 / warmup_steps, end_factor=1.0,
                      total_iters=max(1, warmup_steps - 1))
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


def epoch_warmup_cosine(optimizer: Optimizer, warmup_epochs: int, epochs: int) -> LambdaLR:
    r"""The official pLSTM graph code's schedule (ml-jku/plstm_experiments
    ``plstm_graph/src/utils/scheduler.py``, a ``LambdaLR`` that Lightning steps once per epoch):
    epoch :math:`e` trains at :math:`\max(10^{-6}, e / w)` of the learning rate while
    :math:`e < w`, then at :math:`\tfrac12 (1 + \cos(\pi (e - w) / (E - w)))`. Epoch 0 therefore
    barely moves the weights, and the last epoch is not at 0 (:math:`2.7 \cdot 10^{-4}` for
    :math:`w = 5, E = 100`)."""
    if epochs < 1:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"warmup_epochs must be in [0, epochs={epochs}], got {warmup_epochs}")

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return max(1e-6, epoch / warmup_epochs)
        progress = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
