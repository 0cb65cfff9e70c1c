"""The DAG and tree examples, each run as a user runs it (``python examples/X.py ...``) on a tiny
budget, in this process (``runpy``) so the test does not pay for a second torch import."""
import json
import re
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_dag_architectures_trains_and_reports_rmse_pearson_and_predictions(
        shared_data, one_thread, monkeypatch, capsys):
    out = run_example("dag_architectures.py", "--data-root", str(shared_data), "--limit", "64",
                      "--eval-limit", "32", "--epochs", "2", "--hidden", "16", "--layers", "2",
                      monkeypatch=monkeypatch, capsys=capsys)
    assert "64 / 32 / 32 graphs" in out
    assert len(re.findall(r"^epoch \d: last batch loss [\d.]+, valid rmse 0\.\d+$", out, re.M)) == 2
    final = re.search(r"test rmse (0\.\d+), pearson r (-?[\d.]+|nan) "
                      r"\(predicting the training mean: rmse (0\.\d+)\)", out)
    assert final, out
    rmse, mean_rmse = float(final[1]), float(final[3])
    # Accuracies lie within ~0.05 of 0.74: any sane model is within a few standard deviations.
    assert 0 < rmse < 0.05 and 0 < mean_rmse < 0.05
    # Five test architectures, each from input to output with its predicted and true accuracy.
    shown = re.findall(r"^  input( -> \w+){7} \(\+\d+ skips\): predicted 0\.\d{4}, true 0\.\d{4}$",
                       out, re.M)
    assert len(shown) == 5, out


def test_sentiment_trees_trains_and_prints_sentences_with_root_sentiment(
        shared_data, one_thread, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    out = run_example("sentiment_trees.py", "--data-root", str(shared_data), "--limit", "16",
                      "--epochs", "1", "--hidden", "16", "--layers", "1", "--show", "3",
                      "--out", str(run_dir), monkeypatch=monkeypatch, capsys=capsys)
    final = re.search(r"plstm on sst \(16 training sentences\), best validation epoch 1: test root "
                      r"accuracy ([\d.]+), all-node accuracy ([\d.]+)", out)
    assert final, out
    assert 0 <= float(final[1]) <= 1 and 0 <= float(final[2]) <= 1
    assert (run_dir / "best.pt").exists() and (run_dir / "summary.json").exists()
    labels = "very negative|negative|neutral|positive|very positive"
    shown = re.findall(rf"^  \[({labels}) / true: ({labels})\] (.+)$", out, re.M)
    assert len(shown) == 3, out
    # The first test sentence of the treebank, as the loader joins its words.
    assert shown[0][1] == "neutral" and shown[0][2] == "Effective but too-tepid biopic"


def test_sentiment_trees_passes_the_arrangement_to_the_model_and_refuses_a_misfit(
        shared_data, one_thread, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    out = run_example("sentiment_trees.py", "--data-root", str(shared_data), "--limit", "8",
                      "--epochs", "1", "--hidden", "16", "--layers", "2", "--arrangement", "paired",
                      "--seed", "3", "--show", "1", "--out", str(run_dir),
                      monkeypatch=monkeypatch, capsys=capsys)
    assert "plstm on sst (8 training sentences)" in out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_options"] == {"arrangement": "paired"} and config["seed"] == 3
    with pytest.raises(SystemExit):  # the DAG-LSTM runs forward or alternate, never paired
        run_example("sentiment_trees.py", "--model", "dag-lstm", "--arrangement", "paired",
                    monkeypatch=monkeypatch, capsys=capsys)
    assert "arrangement must be one of alternate, forward; got 'paired'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_example("sentiment_trees.py", "--model", "gin", "--arrangement", "forward",
                    monkeypatch=monkeypatch, capsys=capsys)
    assert "do not fit model 'gin'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dag_architectures.py", "sentiment_trees.py"])
def test_examples_state_their_budget_and_run_command(name):
    doc = runpy.run_path(str(EXAMPLES / name))["__doc__"]
    assert f"python examples/{name} --data-root ../shared/data" in doc
    assert "Default (reduced) budget" in doc


def test_arrow_pointing_resumes_a_stopped_run_where_it_stopped(one_thread, tmp_path, monkeypatch,
                                                                capsys):
    import torch

    args = ["--model", "plstm-2d-d", "--size", "64", "--patch", "16", "--num-train", "24",
            "--num-valid", "4", "--num-test", "4", "--steps", "6", "--warmup", "2",
            "--batch-size", "8", "--hidden", "8", "--layers", "1", "--eval-every", "2",
            "--valid-only"]

    def final(out: str) -> dict:
        return json.loads(out.strip().splitlines()[-1])

    whole = final(run_example("arrow_pointing.py", *args, monkeypatch=monkeypatch, capsys=capsys))

    # Stop the same run inside step 5 (after the checkpoint of step 4), then resume it.
    checkpoint = tmp_path / "run.pt"
    calls, clip = [], torch.nn.utils.clip_grad_norm_

    def clip_until_interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return clip(*a, **k)

    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.utils, "clip_grad_norm_", clip_until_interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_example("arrow_pointing.py", *args, "--checkpoint", str(checkpoint),
                        monkeypatch=monkeypatch, capsys=capsys)
    assert torch.load(checkpoint, weights_only=False)["progress"]["step"] == 4
    out = run_example("arrow_pointing.py", *args, "--checkpoint", str(checkpoint),
                      monkeypatch=monkeypatch, capsys=capsys)
    assert "resumed" in out and "at step 4" in out
    resumed = final(out)
    assert resumed["final_train_loss"] == pytest.approx(whole["final_train_loss"], abs=1e-6)
    assert resumed["curve"][:2] == [{**point, "cpu_seconds": resumed["curve"][i]["cpu_seconds"]}
                                    for i, point in enumerate(whole["curve"][:2])]
    assert resumed["valid_acc"] == whole["valid_acc"]

    # Other settings than the checkpoint's are refused, naming them.
    with pytest.raises(SystemExit, match="lr: 0.001 there, 0.002 now"):
        run_example("arrow_pointing.py", *args, "--lr", "2e-3", "--checkpoint", str(checkpoint),
                    monkeypatch=monkeypatch, capsys=capsys)

    # The pooling that ran is recorded (the model's default, max, was not given). A checkpoint
    # from before that recorded None, the default of its time: it resumes only when told which.
    state = torch.load(checkpoint, weights_only=False)
    assert state["args"]["pooling"] == "max"
    state["args"]["pooling"] = None
    torch.save(state, checkpoint)
    with pytest.raises(SystemExit, match="does not record its pooling"):
        run_example("arrow_pointing.py", *args, "--checkpoint", str(checkpoint),
                    monkeypatch=monkeypatch, capsys=capsys)
    out = run_example("arrow_pointing.py", *args, "--pooling", "max", "--checkpoint",
                      str(checkpoint), monkeypatch=monkeypatch, capsys=capsys)
    assert final(out)["valid_acc"] == whole["valid_acc"]


def test_arrow_pointing_summarizes_runs_as_a_table_and_figures(tmp_path, monkeypatch, capsys):
    curve = [{"step": 2, "train_loss": 0.69, "valid_acc": 0.5, "valid_acc_2x": 0.5},
             {"step": 4, "train_loss": 0.6, "valid_acc": 0.7, "valid_acc_2x": 0.6}]
    run = {"size": 64, "steps": 4, "batch_size": 8, "parameters": 1234, "train_cpu_seconds": 2.0,
           "curve": curve}
    for model, seed, test in (("vit", 0, 0.6), ("vit", 1, 0.7), ("plstm-2d-d", 0, 0.9)):
        (tmp_path / f"{model}-{seed}.json").write_text(json.dumps(
            {**run, "model": model, "seed": seed, "test_acc": test, "extrapolation_acc_128": 0.5,
             "position_embedding": "learned-sincos"}))
    # Another position embedding is another row; results from before it was recorded say "?".
    (tmp_path / "plstm-2d-d-none-0.json").write_text(json.dumps(
        {**run, "model": "plstm-2d-d", "seed": 0, "test_acc": 0.8, "extrapolation_acc_128": 0.7,
         "position_embedding": "none"}))
    (tmp_path / "vit-old-0.json").write_text(json.dumps(
        {**run, "model": "vit", "seed": 0, "test_acc": 0.55, "extrapolation_acc_128": 0.5}))
    (tmp_path / "valid-only.json").write_text(json.dumps({**run, "model": "vit", "seed": 2}))
    # Several globs; a file two of them match counts once.
    out = run_example("arrow_pointing.py", "--summarize", *(str(tmp_path / glob) for glob in
                      ("vit-*.json", "*-0.json", "valid-*.json")), "--figure",
                      str(tmp_path / "bars.png"), "--curves", str(tmp_path / "curves.png"),
                      monkeypatch=monkeypatch, capsys=capsys)
    assert "| vit | learned-sincos | 1,234 | 2 | 4 x 8 | 0.650 ± 0.071 | 0.500 ± 0.000 | 2 |" in out
    assert "| plstm-2d-d | learned-sincos | 1,234 | 1 | 4 x 8 | 0.900 ± 0.000 |" in out
    assert "| plstm-2d-d | none | 1,234 | 1 | 4 x 8 | 0.800 ± 0.000 | 0.700 ± 0.000 |" in out
    assert "| vit | ? | 1,234 | 1 | 4 x 8 | 0.550 ± 0.000 |" in out
    assert (tmp_path / "bars.png").stat().st_size > 0 and (tmp_path / "curves.png").stat().st_size > 0
