"""The benchmark scripts run on real data at a tiny budget and print their ratios."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


@pytest.mark.slow
def test_mixed_bench_compares_the_backends_on_proteins(shared_data):
    out = run_script("mixed_bench.py", "--data-root", str(shared_data), "--batches", "2",
                     "--repeats", "1")
    rows = [line for line in out.splitlines() if line.startswith("| 0 |") or line.startswith("| 1 |")]
    assert len(rows) == 4  # two batches, P and D
    assert "auto's choices:" in out and "mixed / auto" in out


@pytest.mark.slow
def test_epoch_time_runs_on_a_k_fold_dataset(shared_data):
    out = run_script("epoch_time.py", "--dataset", "MUTAG", "--data-root", str(shared_data),
                     "--models", "plstm,gin", "--rounds", "1", "--interleave")
    assert "| plstm |" in out and "| gin |" in out
    assert "ratio plstm / gin (CPU time): fastest epochs" in out and "median of the rounds" in out


@pytest.mark.slow
def test_plstm_bench_prints_both_timings(shared_data):
    out = run_script("plstm_bench.py", "--molecules", "6", "--repeats", "1", "--threads", "1",
                     "--back-to-back", "0.01")
    assert "| plstm op, reference" in out and "CPU ms, back to back" in out
    for what in ("CPU", "CPU, back to back"):
        assert f"{what} time: faster than the per-edge reference: levels" in out


def test_training_signal_prints_loss_gradient_and_prediction_spread(shared_data):
    out = run_script("training_signal.py", "--dataset", "MUTAG", "--data-root", str(shared_data),
                     "--models", "plstm,gin", "--steps", "5", "--every", "2", "--limit", "64",
                     "--pooling", "mean")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(("| plstm", "| gin"))]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        (f"| {model}", "mean", step) for model in ("plstm", "gin") for step in ("2", "4", "5")]
    for row in rows:
        loss, norm_median, norm_max, std = float(row[3]), float(row[4]), float(row[5]), float(row[7])
        assert 0 < loss < 1 and 0 < norm_median <= norm_max and std >= 0


def test_branch_scale_prints_every_block_and_plstm_states(shared_data):
    out = run_script("branch_scale.py", "--dataset", "MUTAG", "--data-root", str(shared_data),
                     "--models", "plstm,gin")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(("| plstm", "| gin"))]
    assert [(row[0], row[1], row[2]) for row in rows] == (
        [("| plstm", str(b), "PLSTMConv") for b in range(4)] +
        [("| gin", str(b), "GINEConv") for b in range(4)])
    for row in rows:
        assert all(float(value) > 0 for value in row[3:6])
        assert (row[6] == "- |") == (row[0] == "| gin")
    # the official projections (std 0.079, no 1/sqrt(K)) start pLSTM's branch several times larger
    official = run_script("branch_scale.py", "--dataset", "MUTAG", "--data-root", str(shared_data),
                          "--models", "plstm", "--model-option", "projections=official")
    branch = [float(line.split(" | ")[4]) for line in official.splitlines()
              if line.startswith("| plstm")]
    assert min(branch) > 3 * max(float(row[4]) for row in rows[:4])
    # with a GINE layer beside it the state is still read, from the mixer's pLSTM part
    hybrid = run_script("branch_scale.py", "--dataset", "MUTAG", "--data-root", str(shared_data),
                        "--models", "plstm", "--model-option", "local=gin")
    hybrid = [line.split(" | ") for line in hybrid.splitlines() if line.startswith("| plstm")]
    assert [row[2] for row in hybrid] == ["LocalGlobalMixer"] * 4
    assert all(float(row[6].rstrip(" |")) > 0 for row in hybrid)
