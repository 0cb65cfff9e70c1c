import math
from types import SimpleNamespace

import pytest
import torch

from plstm_graph.train.callbacks import LAST, RunFolder
from plstm_graph.train.checkpoint import load_checkpoint, rng_states, save_checkpoint
from plstm_graph.train.schedule import epoch_warmup_cosine, warmup_cosine
from plstm_graph.train.tasks import Task


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("interrupted mid-write")


def test_a_failed_write_keeps_the_previous_checkpoint_and_no_temp_file(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)
    with pytest.raises(RuntimeError, match="mid-write"):
        save_checkpoint({"epoch": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_run_resumes_with_cpu_rng_states_whatever_its_device(tmp_path):
    """torch.set_rng_state takes CPU bytes only; loading ``last.pt`` onto the trainer's device
    (a GPU) broke every resumed CUDA run. Weights move to their parameters' device later."""
    save_checkpoint({"rng": rng_states(), "model": {"w": torch.ones(2)}}, tmp_path / LAST)
    loaded = []
    trainer = SimpleNamespace(device=torch.device("meta"), load_state_dict=loaded.append,
                              context=SimpleNamespace(is_main=False))
    RunFolder(tmp_path).on_fit_start(trainer)
    assert loaded[0]["rng"]["torch"].device.type == "cpu"
    torch.set_rng_state(loaded[0]["rng"]["torch"])


def factors(make_schedule, steps: int) -> list[float]:
    """The learning-rate factor of each of ``steps`` steps of ``make_schedule(optimizer)``."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler, seen = make_schedule(optimizer), []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_warmup_then_cosine_to_zero():
    lrs = factors(lambda opt: warmup_cosine(opt, warmup_steps=2, total_steps=6), 6)
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert lrs[3:] == pytest.approx([0.5 * (1 + torch.cos(torch.tensor(torch.pi * k / 4)).item())
                                     for k in (1, 2, 3)])


def test_epoch_schedule_is_the_official_graph_codes():
    """100 epochs, 5 of warm-up: epoch 0 at 1e-6 of the rate, then 0.2 ... 0.8, then a half
    cosine that ends above 0 (ml-jku/plstm_experiments, stepped once per epoch)."""
    epochs = factors(lambda opt: epoch_warmup_cosine(opt, warmup_epochs=5, epochs=100), 100)
    assert epochs[:7] == pytest.approx([1e-6, 0.2, 0.4, 0.6, 0.8, 1.0,
                                        0.5 * (1 + math.cos(math.pi / 95))])
    assert epochs[99] == pytest.approx(2.73e-4, rel=1e-2)
    with pytest.raises(ValueError, match="warmup_epochs must be in"):
        factors(lambda opt: epoch_warmup_cosine(opt, warmup_epochs=6, epochs=5), 1)


def test_losses_skip_missing_labels():
    pred = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    y = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    task = Task("binary classification", 2)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([0.0, 1.0, -1.0]), torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(task.loss(pred, y), expected)
    regression = Task("regression", 2)
    regression.scale = torch.tensor([2.0, 1.0])
    torch.testing.assert_close(regression.loss(pred, y), ((0 - 1) ** 2 / 4 + 1 / 4 + 4) / 3 * torch.ones(()))
    mean, std = regression.target_scale([y])
    torch.testing.assert_close(mean, torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(std, torch.tensor([0.5, 1.0]))  # a constant column keeps std 1
