"""``plstm-graph train / evaluate / compare`` end to end on a slice of the embedded TPSA set."""
import json

import pytest
import torch

from plstm_graph.cli import main
from plstm_graph.cli.train import fold_list
from plstm_graph.train.trainer import Trainer

TINY = ["--limit", "24", "--epochs", "2", "--hidden", "16", "--layers", "2", "--heads", "2",
        "--batch-size", "8", "--no-progress"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the commands set 1 thread


def summary_of(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def test_tiny_train_then_evaluate(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--dataset", "tpsa", "--model", "plstm", "--out", str(run_dir), *TINY]) == 0
    out = capsys.readouterr().out
    summary = summary_of(run_dir)
    assert f"test rmse: {summary['test']:.4f}" in out and f"run folder: {run_dir}" in out
    assert summary["num_graphs"] == {"train": 24, "valid": 24, "test": 24}
    for name in ("config.json", "last.pt", "best.pt", "metrics.jsonl", "learning_curve.png"):
        assert (run_dir / name).is_file()

    assert main(["evaluate", str(run_dir)]) == 0
    assert f"test rmse: {summary['test']:.4f}" in capsys.readouterr().out


def full_and_interrupted_runs(tmp_path, monkeypatch):
    """A 3-epoch GIN run, and the same run stopped by Ctrl-C in epoch 2: their folders."""
    args = ["train", "--dataset", "tpsa", "--model", "gin", *TINY, "--epochs", "3"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0
    train_epoch = Trainer.train_epoch

    def ctrl_c_in_epoch_2(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return train_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", ctrl_c_in_epoch_2)
    assert main([*args, "--out", str(tmp_path / "cut")]) == 130
    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    return tmp_path / "full", tmp_path / "cut"


def assert_same_results(run_dir, other_dir):
    ours, theirs = summary_of(run_dir), summary_of(other_dir)
    for key in ("best_epoch", "train", "valid", "test"):
        assert ours[key] == theirs[key], key


def test_ctrl_c_leaves_a_resumable_run_that_ends_like_an_uninterrupted_one(tmp_path, capsys,
                                                                           monkeypatch):
    full, cut = full_and_interrupted_runs(tmp_path, monkeypatch)
    assert f"plstm-graph train --resume {cut}" in capsys.readouterr().err
    assert main(["train", "--resume", str(cut)]) == 0
    assert_same_results(cut, full)


def test_a_run_moves_to_another_device_on_resume(tmp_path, capsys, monkeypatch):
    """A folder begun on a GPU machine (its config.json says cuda) continues on a CPU one."""
    full, moved = full_and_interrupted_runs(tmp_path, monkeypatch)
    config = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps(config | {"device": "cuda"}))
    if not torch.cuda.is_available():
        assert main(["train", "--resume", str(moved)]) == 2
        assert "use --device cpu" in capsys.readouterr().err
    assert main(["train", "--resume", str(moved), "--device", "cpu"]) == 0
    assert json.loads((moved / "config.json").read_text())["device"] == "cpu"  # what ran last
    assert summary_of(moved)["device"] == "cpu"
    assert_same_results(moved, full)


def test_compare_writes_a_table_and_a_bar_plot(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", "tpsa", "--models", "gin,gcn", "--seeds", "0,1",
                 "--out", str(out), *TINY, "--epochs", "1"]) == 0
    table = (out / "results.md").read_text()
    assert "| tpsa | rmse | gin |" in table and "| tpsa | rmse | gcn |" in table
    assert (out / "results.png").is_file()
    rows = json.loads((out / "results.json").read_text())["rows"]
    gin = summary_of(out / "tpsa" / "gin" / "seed_0")["test"], summary_of(out / "tpsa" / "gin" / "seed_1")["test"]
    assert rows[0]["runs"] == 2 and rows[0]["test_mean"] == pytest.approx(sum(gin) / 2)
    last = [summary_of(out / "tpsa" / "gin" / f"seed_{seed}")["test_last"] for seed in (0, 1)]
    assert rows[0]["test_last_mean"] == pytest.approx(sum(last) / 2)
    assert f"{rows[0]['test_last_mean']:.4f} ± {rows[0]['test_last_std']:.4f}" in table
    valid = [summary_of(out / "tpsa" / "gin" / f"seed_{seed}")["valid"] for seed in (0, 1)]
    assert rows[0]["valid_mean"] == pytest.approx(sum(valid) / 2)
    assert f"| {rows[0]['valid_mean']:.4f} ± {rows[0]['valid_std']:.4f} | " in table


def test_unknown_dataset_lists_the_valid_names(tmp_path, capsys):
    assert main(["train", "--dataset", "no-such-set", "--out", str(tmp_path / "x")]) == 2
    out = capsys.readouterr().err
    assert "unknown dataset 'no-such-set'" in out and "tpsa" in out and "MUTAG" in out
    assert not (tmp_path / "x").exists()


def test_unknown_model_lists_the_valid_ones(capsys):
    assert main(["train", "--model", "mlp"]) == 2
    assert "model must be one of plstm, gin, gcn, gat, attention" in capsys.readouterr().err
    assert main(["compare", "--dataset", "tpsa", "--models", "gin,mlp"]) == 2
    assert "unknown mlp; valid models: plstm, gin, gcn, gat, attention" in capsys.readouterr().err.replace(",\n", ", ")


def test_missing_offline_data_is_reported(monkeypatch, capsys):
    from plstm_graph.data import DatasetNotFoundError

    def missing(name, root=None):
        raise DatasetNotFoundError(f"{name}: rebuild it with plstm-graph data rebuild-ogb")

    monkeypatch.setattr("plstm_graph.data.get_dataset", missing)
    assert main(["train", "--dataset", "ogbg-molbace"]) == 2
    assert ("plstm-graph train: error: ogbg-molbace: rebuild it with plstm-graph data rebuild-ogb"
            in capsys.readouterr().err)


@pytest.mark.parametrize("argv,message", [
    (["train", "--resume", "RUN", "--epochs", "3"], "drop --epochs"),
    (["train", "--resume", "RUN"], "is not a plstm-graph run folder"),
    (["train", "--dataset", "tpsa", "--folds", "10"], "folds=10 needs a k-fold dataset"),
    (["train", "--dataset", "tpsa", "--only-folds", "0-4"], "only_folds needs a k-fold dataset"),
    (["train", "--epochs", "0"], "epochs must be a positive integer"),
    (["evaluate", "RUN"], "is not a plstm-graph run folder"),
])
def test_bad_options_give_clear_errors(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / "nothing") if arg == "RUN" else arg for arg in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text,folds", [("0-4", [0, 1, 2, 3, 4]), ("7", [7]),
                                        ("1,3,7-8", [1, 3, 7, 8]), (" 2 , 5-6", [2, 5, 6])])
def test_only_folds_reads_numbers_and_ranges(text, folds):
    assert fold_list(text) == folds


@pytest.mark.parametrize("text", ["", "a", "1-", "0-4,x", "5-3"])
def test_only_folds_refuses_what_is_not_a_fold_list(text, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--only-folds", text])
    assert stop.value.code == 2
    assert "argument --only-folds:" in capsys.readouterr().err


def test_a_k_fold_run_is_shared_between_two_commands(tmp_path, capsys, shared_data):
    mutag = ["--dataset", "MUTAG", "--folds", "2", "--data-root", str(shared_data), *TINY,
             "--epochs", "1"]
    out = tmp_path / "cmp"
    compare = ["compare", *mutag, "--models", "gcn", "--out", str(out)]
    assert main([*compare, "--only-folds", "1"]) == 0
    assert "1 runs (folds x seeds) are still to run (--only-folds)" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["rows"][0]["runs"] == 1
    assert main([*compare, "--only-folds", "0"]) == 0
    assert "still to run" not in capsys.readouterr().out
    row = json.loads((out / "results.json").read_text())["rows"][0]
    run = summary_of(out / "MUTAG" / "gcn" / "seed_0")
    assert row["runs"] == 2 and row["pending_folds"] == 0 and row["test_mean"] == run["test_mean"]

    alone = tmp_path / "train"
    assert main(["train", *mutag, "--model", "gcn", "--out", str(alone), "--only-folds", "1"]) == 0
    assert "folds 0 are still to run" in capsys.readouterr().out
    assert main(["train", "--resume", str(alone), "--only-folds", "0"]) == 0
    assert f"test acc: {summary_of(alone)['test_mean']:.4f} ± " in capsys.readouterr().out


def test_python_dash_m_runs_the_command_line():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "plstm_graph", "models"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("plstm ") and "\ngin " in result.stdout


def test_a_diverging_run_stops_and_says_so(tmp_path, capsys, monkeypatch):
    from plstm_graph.train.tasks import Task
    loss = Task.loss
    calls = []

    def blows_up_at_step_3(self, pred, y):
        calls.append(1)
        value = loss(self, pred, y)
        return value * float("nan") if len(calls) == 3 else value

    monkeypatch.setattr(Task, "loss", blows_up_at_step_3)
    run_dir = tmp_path / "run"
    assert main(["train", "--model", "gin", "--out", str(run_dir), *TINY]) == 1
    assert "diverged" in capsys.readouterr().out
    summary = summary_of(run_dir)
    assert summary["status"] == "diverged" and summary["diverged"]["step"] == 3
    assert summary["epochs"] == 0 and summary["test"] is None

    calls.clear()
    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", "tpsa", "--models", "gin", "--out", str(out), *TINY]) == 1
    assert "| tpsa | rmse | gin | 8,435 | diverged |" in (out / "results.md").read_text()


def test_settings_and_data_are_checked_before_any_folder_is_made(tmp_path, capsys):
    out = tmp_path / "x"
    for argv, message in [
        (["compare", "--dataset", "tpsa,nosuch", "--models", "gin"], "unknown dataset 'nosuch'"),
        (["train", "--heads", "3"], "heads must divide hidden (64)"),
        (["train", "--device", "cuda"], "device: 'cuda' asked for"),
    ]:
        assert main([*argv, "--out", str(out), *TINY[:2]]) == 2, argv
        assert message in capsys.readouterr().err
        assert not out.exists()


def test_run_files_are_strict_json_with_the_users_file_mode(tmp_path):
    import os
    import stat
    run_dir = tmp_path / "run"
    assert main(["train", "--model", "gcn", "--out", str(run_dir), *TINY, "--epochs", "1"]) == 0
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.json", "summary.json", "last.pt", "best.pt", "metrics.jsonl"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o666 & ~mask, name
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in metrics.jsonl"))
    assert json.loads(json.dumps(summary_of(run_dir)))["world_size"] == 1


def test_non_finite_numbers_are_written_as_null():
    from plstm_graph.train.checkpoint import json_line
    assert json_line({"valid_rocauc": float("nan"), "loss": float("inf"), "epoch": 1}) == \
        '{"valid_rocauc": null, "loss": null, "epoch": 1}\n'


@pytest.mark.parametrize("argv", [["--help"], ["train", "--epochs", "x"], ["compare", "--help"],
                                  ["data", "--help"]])
def test_help_and_argument_errors_load_no_torch(argv):
    """They used to import torch_geometric (about 7 s) before printing anything."""
    import subprocess
    import sys
    code = ("import sys\nfrom plstm_graph.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\nheavy = [m for m in ('torch', 'torch_geometric', 'rdkit')"
            " if m in sys.modules]\nassert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_ape_runs_score_the_larger_images_too(tmp_path, capsys):
    run_dir = tmp_path / "ape"
    assert main(["train", "--dataset", "ape-64", "--model", "plstm-2d", "--out", str(run_dir),
                 *TINY, "--epochs", "1", "--limit", "16"]) == 0
    summary = summary_of(run_dir)
    assert summary["extrapolation_graphs"] == 16 and 0 <= summary["extrapolation_acc"] <= 1
    assert f"extrapolation acc: {summary['extrapolation_acc']:.4f}" in capsys.readouterr().out


def test_model_options_from_the_command_line(tmp_path, capsys):
    run_dir = tmp_path / "paired"
    assert main(["train", "--model", "plstm", "--model-option", "arrangement=paired",
                 "--out", str(run_dir), *TINY, "--epochs", "1"]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_options"] == {"arrangement": "paired"}
    for option, error in (("arrangement", "--model-option must be KEY=VALUE"),
                          ("arrangement=spiral", "arrangement must be one of"),
                          ("width=3", "model_options {'width': 3} do not fit model 'plstm'")):
        assert main(["train", "--model-option", option, "--out", str(tmp_path / "x"), *TINY]) == 2
        assert error in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["train", "--resume", str(run_dir), "--model-option", "gates=official"]) == 2
    assert "drop --model-option" in capsys.readouterr().err
    assert main(["models"]) == 0
    assert "--model-option arrangement=alternate, gates=default" in capsys.readouterr().out


def test_dropout_from_the_command_line_is_recorded_and_reaches_the_model(tmp_path, capsys):
    from plstm_graph.train.run import load_config

    run_dir = tmp_path / "dropout"
    assert main(["train", "--model", "gin", "--dropout", "0.25", "--out", str(run_dir), *TINY,
                 "--epochs", "1"]) == 0
    assert json.loads((run_dir / "config.json").read_text())["dropout"] == 0.25
    assert load_config(run_dir).dropout == 0.25
    assert main(["train", "--dropout", "1.5", "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "dropout must be a number in [0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_model_option_keeps_the_presets_other_options():
    from plstm_graph.train import TrainConfig
    config = TrainConfig(dataset="MUTAG", preset="paper", model_options={"gates": "default"})
    assert config.model_options == {"arrangement": "paired", "gates": "default",
                                    "projections": "official", "p_mode_over": "predecessors",
                                    "head": "mlp", "edge_features": "ends"}
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_pooling_and_schedule_choices_are_the_libraries():
    import argparse

    from plstm_graph.cli.train import add_training_options
    from plstm_graph.nn.models import POOLINGS
    from plstm_graph.train.schedule import LR_SCHEDULES

    parser = argparse.ArgumentParser()
    add_training_options(parser)
    choices = {action.dest: action.choices for action in parser._actions}
    assert tuple(choices["pooling"]) == tuple(POOLINGS)
    assert tuple(choices["lr_schedule"]) == tuple(LR_SCHEDULES)
