import json
import math
from dataclasses import replace

import pytest
import torch

from plstm_graph.nn import GraphModel
from plstm_graph.nn.models import count_parameters
from plstm_graph.train import TrainConfig, evaluate_run, run_training
from plstm_graph.train.callbacks import BEST, LAST, METRICS, SUMMARY
from plstm_graph.train.run import load_config
from plstm_graph.train.trainer import better


class Interrupt:
    """An ``on_epoch_end`` hook that raises KeyboardInterrupt (Ctrl-C) after ``epoch``."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def __call__(self, epoch, record):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]


def strip_time(rows):
    return [{k: v for k, v in row.items() if k != "train_seconds"} for row in rows]


#: The pLSTM paper's GIN (``--preset paper``): batch norms, whose running statistics a resumed
#: run must restore too, and a read-out per layer.
PAPER_GIN = {"block": "plain", "head": "per-layer", "degree": "none", "edge_features": "ends"}


@pytest.mark.parametrize("model,task,options,schedule", [
    ("plstm", "binary classification", None, "batch"),
    ("gin", "regression", None, "epoch"),
    ("gin", "binary classification", PAPER_GIN, "batch")])
def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, model, task, options,
                                                            schedule, make_toy):
    spec = make_toy(task)
    config = TrainConfig(dataset="toy", model=model, epochs=4, batch_size=8, hidden=16,
                         layers=2, heads=2, warmup_epochs=1, model_options=options,
                         lr_schedule=schedule)
    full = run_training(config, tmp_path / "full", progress=False, spec=spec)

    with pytest.raises(KeyboardInterrupt):
        run_training(config, tmp_path / "cut", progress=False, spec=spec, on_epoch_end=Interrupt(2))
    assert not (tmp_path / "cut" / SUMMARY).exists()
    assert torch.load(tmp_path / "cut" / LAST, weights_only=False)["epoch"] == 2
    resumed = run_training(config, tmp_path / "cut", progress=False, spec=spec)

    for key in ("best_epoch", "train", "valid", "test", "parameters"):
        assert resumed[key] == full[key], key  # exactly, not approximately
    assert strip_time(read_metrics(tmp_path / "cut")) == strip_time(read_metrics(tmp_path / "full"))
    best_full = torch.load(tmp_path / "full" / BEST, weights_only=False)["model"]
    best_cut = torch.load(tmp_path / "cut" / BEST, weights_only=False)["model"]
    for name in best_full:
        assert torch.equal(best_full[name], best_cut[name]), name


def test_an_epoch_logged_after_the_last_checkpoint_is_dropped_on_resume(tmp_path, make_toy):
    spec = make_toy()
    config = TrainConfig(dataset="toy", model="gcn", epochs=3, hidden=16, layers=1)
    with pytest.raises(KeyboardInterrupt):
        run_training(config, tmp_path, progress=False, spec=spec, on_epoch_end=Interrupt(1))
    with open(tmp_path / METRICS, "a") as handle:  # as if killed between log and checkpoint
        handle.write(json.dumps({"epoch": 2, "stale": True}) + "\n")
    run_training(config, tmp_path, progress=False, spec=spec)
    assert [row["epoch"] for row in read_metrics(tmp_path)] == [1, 2, 3]
    assert not any("stale" in row for row in read_metrics(tmp_path))


def test_run_folder_contents_and_re_evaluation(tmp_path, make_toy):
    spec = make_toy()
    config = TrainConfig(dataset="toy", model="gin", epochs=3, hidden=16, layers=2)
    summary = run_training(config, tmp_path, progress=False, spec=spec)
    for name in ("config.json", LAST, BEST, METRICS, SUMMARY, "learning_curve.png"):
        assert (tmp_path / name).is_file(), name
    rows = read_metrics(tmp_path)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    best = max(rows, key=lambda row: row["valid_rocauc"])
    assert summary["best_epoch"] == best["epoch"] and summary["test"] == best["test_rocauc"]
    assert summary["test_last"] == rows[-1]["test_rocauc"]  # the other selection rule
    again = evaluate_run(tmp_path, spec=spec)
    assert again["runs"][0]["epoch"] == summary["best_epoch"]
    assert again["runs"][0]["valid"] == pytest.approx(summary["valid"], abs=1e-6)
    assert again["runs"][0]["test"] == pytest.approx(summary["test"], abs=1e-6)


def test_k_fold_runs_report_mean_and_std_over_folds(tmp_path, make_toy):
    spec = make_toy(num_folds=3)
    config = TrainConfig(dataset="toy", model="gcn", epochs=2, hidden=16, layers=1, folds=3)
    summary = run_training(config, tmp_path, progress=False, spec=spec)
    tests = [json.loads((tmp_path / f"fold_{k}" / SUMMARY).read_text())["test"] for k in range(3)]
    assert summary["folds"] == 3 and [row["test"] for row in summary["per_fold"]] == tests
    assert summary["test_mean"] == pytest.approx(sum(tests) / 3)
    assert summary["test_std"] == pytest.approx(torch.tensor(tests).std(unbiased=False).item())
    last = [read_metrics(tmp_path / f"fold_{k}")[-1]["test_rocauc"] for k in range(3)]
    assert [row["test_last"] for row in summary["per_fold"]] == last
    assert summary["test_last_mean"] == pytest.approx(sum(last) / 3)
    with pytest.raises(ValueError, match="folds must be at most 3"):
        run_training(TrainConfig(dataset="toy", model="gcn", folds=4), tmp_path / "x",
                     progress=False, spec=spec)


def test_a_k_fold_run_extends_to_more_folds(tmp_path, make_toy):
    spec = make_toy(num_folds=3)
    config = TrainConfig(dataset="toy", model="gcn", epochs=1, hidden=16, layers=1, folds=2)
    run_training(config, tmp_path, progress=False, spec=spec)
    first = (tmp_path / "fold_0" / SUMMARY).read_text()
    summary = run_training(replace(config, folds=3), tmp_path, progress=False, spec=spec)
    assert summary["folds"] == 3 and (tmp_path / "fold_2" / SUMMARY).exists()
    assert (tmp_path / "fold_0" / SUMMARY).read_text() == first  # reused, not retrained
    assert load_config(tmp_path).folds == 3


def test_folds_split_over_two_processes_end_as_one_run(tmp_path, make_toy):
    spec = make_toy(num_folds=3)
    config = TrainConfig(dataset="toy", model="gcn", epochs=1, hidden=16, layers=1, folds=3)
    whole = run_training(config, tmp_path / "whole", progress=False, spec=spec)
    shared = tmp_path / "shared"
    first = run_training(config, shared, progress=False, spec=spec, only_folds=[2])
    assert first["folds"] == 1 and first["pending_folds"] == [0, 1]
    assert not (shared / SUMMARY).exists() and not (shared / "fold_0").exists()
    second = run_training(config, shared, progress=False, spec=spec, only_folds=[1, 0, 1])
    assert "pending_folds" not in second and second["folds"] == 3
    assert json.loads((shared / SUMMARY).read_text())["test_mean"] == second["test_mean"]
    for key in ("test", "valid", "test_last"):  # the same folds, trained apart or together
        assert [row[key] for row in second["per_fold"]] == [row[key] for row in whole["per_fold"]]


@pytest.mark.parametrize("num_folds,only,message", [
    (3, [3], r"only_folds must name folds among 0..2 \(the run's folds=3\), got \[3\]"),
    (3, [], "only_folds must name folds among 0..2"),
    (1, [0], "only_folds needs a k-fold dataset"),
])
def test_only_folds_outside_the_protocol_are_refused(tmp_path, make_toy, num_folds, only, message):
    spec = make_toy(num_folds=num_folds)
    config = TrainConfig(dataset="toy", model="gcn", epochs=1, hidden=16, layers=1,
                         folds=3 if num_folds > 1 else None)
    with pytest.raises(ValueError, match=message):
        run_training(config, tmp_path / "x", progress=False, spec=spec, only_folds=only)
    assert not (tmp_path / "x").exists()


def test_a_folder_with_other_settings_is_not_overwritten(tmp_path, make_toy):
    spec = make_toy()
    run_training(TrainConfig(dataset="toy", model="gcn", epochs=1, hidden=16, layers=1), tmp_path,
                 progress=False, spec=spec)
    with pytest.raises(ValueError, match="other settings .*epochs.*--resume"):
        run_training(TrainConfig(dataset="toy", model="gcn", epochs=2, hidden=16, layers=1),
                     tmp_path, progress=False, spec=spec)


def test_better_prefers_numbers_to_nan_and_keeps_ties():
    assert better(0.5, None, True) and better(0.5, math.nan, True)
    assert not better(math.nan, 0.5, True) and not better(0.5, 0.5, True)
    assert better(0.4, 0.5, False) and not better(0.6, 0.5, False)


@pytest.mark.parametrize("kwargs,match", [
    ({"model": "mlp"}, "model must be one of plstm, gin"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"lr": -1.0}, "lr must be positive"),
    ({"warmup_epochs": 9.0, "epochs": 5}, "warmup_epochs must be in"),
    ({"dropout": -0.1}, r"dropout must be a number in \[0, 1\)"),
    ({"lr_schedule": "step"}, "lr_schedule must be one of batch, epoch"),
])
def test_config_errors_name_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_settings_come_from_the_dataset_family_and_are_recorded():
    tu = TrainConfig(dataset="MUTAG", model="plstm")
    assert (tu.epochs, tu.warmup_epochs, tu.pooling) == (100, 5.0, "sum")
    assert TrainConfig(dataset="MUTAG", model="attention").pooling == "mean"  # the model's own
    assert TrainConfig(dataset="MUTAG", model="plstm", preset="paper").pooling == "mean"
    # A dataset's own choice wins over its family's, for that model only; the caller's over both.
    ptc = TrainConfig(dataset="PTC_MR", model="plstm")
    assert (ptc.epochs, ptc.pooling, ptc.model_options) == (100, "mean", {"gates": "multiscale"})
    ptc.model_options["gates"] = "official"  # a run's options are its own copy
    assert TrainConfig(dataset="PTC_MR", model="plstm").model_options == {"gates": "multiscale"}
    paired = TrainConfig(dataset="PTC_MR", model="plstm", model_options={"arrangement": "paired"})
    assert paired.model_options == {"gates": "multiscale", "arrangement": "paired"}
    assert TrainConfig(dataset="PTC_MR", model="plstm",
                       model_options={"gates": "default"}).model_options == {"gates": "default"}
    assert TrainConfig(dataset="PTC_MR", model="plstm", preset="paper").model_options["gates"] == "official"
    assert TrainConfig(dataset="PTC_MR", model="gin").model_options is None
    assert TrainConfig(dataset="PTC_MR", model="gin").pooling == "sum"
    assert TrainConfig(dataset="PTC_MR", model="plstm", pooling="sum").pooling == "sum"
    assert TrainConfig(dataset="NCI1", model="gin").lr == TrainConfig(dataset="NCI1").lr == 3e-3
    assert TrainConfig(dataset="NCI1", preset="paper").lr == 1e-3  # a preset wins
    assert TrainConfig(dataset="NCI1", model="plstm").model_options == {"local": "gin"}
    assert "local" not in TrainConfig(dataset="NCI1", model="plstm", preset="paper").model_options
    assert TrainConfig(dataset="NCI1", model="plstm",
                       model_options={"local": "none"}).model_options == {"local": "none"}
    for sst in ("sst", "sst-binary"):  # a family's per-model entry
        tree = TrainConfig(dataset=sst, model="plstm")
        assert (tree.layers, tree.model_options, tree.lr) == (8, {"arrangement": "forward"}, 2e-3)
        assert (TrainConfig(dataset=sst, model="dag-lstm").layers,
                TrainConfig(dataset=sst, model="dag-lstm").model_options) == (4, None)
    assert TrainConfig(dataset="ogbg-molhiv", model="plstm").pooling == "sum"
    assert TrainConfig(dataset="ogbg-molbace", model="plstm").pooling == "mean"
    assert TrainConfig(dataset="ogbg-molfreesolv", model="plstm").pooling == "sum"
    assert TrainConfig(dataset="ogbg-molesol", model="plstm").pooling == "mean"
    assert TrainConfig(dataset="MUTAG", epochs=20).warmup_epochs == 1.0  # scales with the run
    assert TrainConfig(dataset="MUTAG", epochs=20, warmup_epochs=3.0).warmup_epochs == 3.0
    paper = TrainConfig(dataset="MUTAG", model="gin", preset="paper")
    assert (paper.hidden, paper.layers, paper.pooling) == (128, 4, "sum")
    assert paper.model_options == PAPER_GIN  # tests/nn/test_paper_baselines.py checks the model
    assert TrainConfig.from_dict(paper.to_dict()) == paper
    with pytest.raises(ValueError, match="preset must be one of paper"):
        TrainConfig(preset="fast")


def test_dropout_reaches_the_model_and_old_configs_read_as_no_dropout(make_toy):
    from plstm_graph.train.trainer import build_model

    config = TrainConfig(dataset="toy", model="gin", hidden=16, layers=1, dropout=0.2)
    assert build_model(config, make_toy()).dropout == 0.2
    # config.json of runs from before the setting existed: no dropout, as they trained.
    old = {key: value for key, value in config.to_dict().items() if key != "dropout"}
    assert TrainConfig.from_dict(old).dropout == 0.0


def test_the_epoch_schedule_sets_each_epochs_rate_and_old_configs_step_per_batch(tmp_path,
                                                                                  make_toy):
    config = TrainConfig(dataset="toy", model="gin", epochs=4, batch_size=8, hidden=16, layers=1,
                         lr=1e-3, warmup_epochs=2, lr_schedule="epoch")
    run_training(config, tmp_path, progress=False, spec=make_toy())
    lrs = [row["lr"] for row in read_metrics(tmp_path)]  # the rate each epoch trained at
    assert lrs == pytest.approx([1e-9, 5e-4, 1e-3, 5e-4], rel=1e-6)
    old = {key: value for key, value in config.to_dict().items() if key != "lr_schedule"}
    assert TrainConfig.from_dict(old).lr_schedule == "batch"
    paper = TrainConfig(dataset="MUTAG", preset="paper")
    assert paper.lr_schedule == "epoch"
    # A paper-preset run saved before the preset stepped per epoch trained per batch.
    old = {key: value for key, value in paper.to_dict().items() if key != "lr_schedule"}
    assert TrainConfig.from_dict(old).lr_schedule == "batch"
    assert TrainConfig(dataset="MUTAG").lr_schedule == "batch"


def test_the_paper_preset_stacks_pLSTM_as_the_official_code():
    config = TrainConfig(dataset="MUTAG", model="plstm", preset="paper")
    assert config.model_options == {"arrangement": "paired", "gates": "official",
                                    "projections": "official", "p_mode_over": "predecessors",
                                    "head": "mlp", "edge_features": "ends"}
    assert config.hidden == 96
    # MUTAG: 7 node and 4 edge (bond) features, 2 classes
    model = GraphModel("plstm", 2, node_channels=7, edge_channels=4, hidden=96, layers=4,
                       model_options=config.model_options)
    assert model.plan == [("P", False), ("D", False), ("P", True), ("D", True)]
    assert set(model.transform().line_graphs) == set(model.plan)
    assert all(block.conv.transition_scale == 1.0 for block in model.blocks)  # official gates
    assert all(block.conv.lin_query.bias is not None for block in model.blocks)
    assert model.edge_encoder is None  # bond labels unused: f_e = (x_u + x_v) / 2
    assert [type(layer).__name__ for layer in model.head] == ["Linear", "ReLU", "Linear"]
    # The official code's model on MUTAG has 469,602 parameters (SPEC section 6).
    assert count_parameters(model) == 469_602
    default = GraphModel("plstm", 2, node_channels=7, edge_channels=4, hidden=96, layers=4,
                         model_options={"arrangement": "paired", "gates": "official"})
    assert count_parameters(default) == 459_330  # no biases, bond encoder, linear head
    with pytest.raises(ValueError, match="head must be one of linear, mlp"):
        TrainConfig(model="gin", model_options={"head": "deep"})
    forward = GraphModel("plstm", 2, node_channels=7, hidden=16, layers=4,
                         model_options={"arrangement": "forward", "gates": "multiscale"})
    assert forward.plan == [("P", False), ("D", False), ("P", False), ("D", False)]
    assert set(forward.transform().line_graphs) == {("P", False), ("D", False)}
    assert all(block.conv.gate_init == "multiscale" for block in forward.blocks)
    with pytest.raises(ValueError, match="arrangement must be one of alternate, paired, forward"):
        TrainConfig(model="plstm", model_options={"arrangement": "spiral"})
    with pytest.raises(ValueError, match="model_options .* do not fit model 'gin'"):
        TrainConfig(model="gin", model_options={"arrangement": "paired"})


def test_train_steps_yield_after_each_step_and_return_what_train_epoch_returns(make_toy):
    from plstm_graph.train.data import DataCache, make_splits
    from plstm_graph.train.run import prepared_graphs
    from plstm_graph.train.trainer import Trainer

    spec = make_toy()
    config = TrainConfig(dataset="toy", model="gin", epochs=1, batch_size=8, hidden=16, layers=1)
    graphs = prepared_graphs(spec, config, DataCache())
    whole, stepped = (Trainer(config, spec, make_splits(spec, graphs, None, None)) for _ in range(2))
    expected = whole.train_epoch()
    steps, count = stepped.train_steps(), 0
    while True:
        try:
            next(steps)
            count += 1
        except StopIteration as finished:
            result = finished.value
            break
    assert count == stepped.steps_per_epoch > 1
    assert result == expected
    for a, b in zip(whole.model.parameters(), stepped.model.parameters()):
        assert torch.equal(a, b)


def test_a_checkpoint_of_an_unfused_optimizer_resumes_fused(make_toy):
    from plstm_graph.train.data import DataCache, make_splits
    from plstm_graph.train.run import prepared_graphs
    from plstm_graph.train.trainer import Trainer

    spec = make_toy()
    config = TrainConfig(dataset="toy", model="gin", epochs=2, batch_size=8, hidden=16, layers=1)
    graphs = prepared_graphs(spec, config, DataCache())
    old, new = (Trainer(config, spec, make_splits(spec, graphs, None, None)) for _ in range(2))
    for group in old.optimizer.param_groups:  # as saved before the trainer used fused AdamW
        group["fused"] = None
    old.train_epoch()
    state = old.state_dict()
    assert state["optimizer"]["param_groups"][0]["fused"] is None
    new.load_state_dict(state)
    assert all(group["fused"] for group in new.optimizer.param_groups)
    new.train_epoch()  # the fused kernel takes the loaded state
    for a, b in zip(old.model.parameters(), new.model.parameters()):
        assert not torch.equal(a, b)  # it trained on
