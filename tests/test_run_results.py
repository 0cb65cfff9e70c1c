"""examples/run_results.sh, every step on a tiny budget (LIMIT), from a fresh output folder."""
import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "run_results.sh"
#: Enough molecules that the first ones of bace hold both classes (its CSV starts with 100 actives).
LIMIT = 200
# 5 epochs, not 1: the training defaults warm up for 5 epochs and refuse fewer.


def run_step(step: str, out: Path, data: Path, shared_data: Path, cache: Path) -> str:
    env = dict(os.environ, STEP=step, OUT=str(out), DATA=str(data), SHARED=str(shared_data),
               LIMIT=str(LIMIT), MODELS="gin", TU_DATASETS="MUTAG", TU_FOLDS="1", TU_EPOCHS="5",
               OGB_DATASETS="ogbg-molbace", OGB_EPOCHS="5", OGB_SEEDS="0", HIV_EPOCHS="5",
               PLSTM_GRAPH_CACHE_DIR=str(cache), OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"STEP={step} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_every_step_runs_on_a_tiny_budget(shared_data, tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    run_step("rebuild", tmp_path / "results", data, shared_data, cache)
    assert sorted(path.name for path in data.iterdir()) == [
        "ogbg_molbace", "ogbg_molbbbp", "ogbg_molesol", "ogbg_molfreesolv", "ogbg_molhiv",
        "ogbg_mollipo"]
    num_nodes = (data / "ogbg_molhiv" / "raw" / "num-node-list.csv.gz").read_bytes()
    assert len(gzip.decompress(num_nodes).splitlines()) == LIMIT
    for step in ("tu", "ogb"):
        run_step(step, tmp_path / "results", data, shared_data, cache)
        assert "| gin |" in (tmp_path / "results" / step / "results.md").read_text()
    # The step that failed on a fresh checkout: its output folder does not exist yet.
    fresh = tmp_path / "fresh" / "results"
    out = run_step("hiv", fresh, data, shared_data, cache)
    assert "| gin |" in out and (fresh / "molhiv_epoch_time.md").read_text() in out
    assert "| ogbg-molhiv | rocauc | gin |" in (fresh / "hiv" / "results.md").read_text()


def test_unknown_step_is_refused_before_any_work(tmp_path):
    env = dict(os.environ, STEP="hvi", OUT=str(tmp_path / "out"))
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "STEP must be all, rebuild, tu, ogb or hiv, got 'hvi'" in result.stderr
    assert not (tmp_path / "out").exists()
