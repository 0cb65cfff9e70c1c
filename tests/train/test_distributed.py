"""Data-parallel training: 2 processes on CPU (gloo) follow the same global batches as 1."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from plstm_graph.train import TrainConfig, run_training

TINY = ["--dataset", "tpsa", "--model", "gin", "--limit", "24", "--batch-size", "8",
        "--hidden", "16", "--layers", "2", "--heads", "2", "--no-progress"]
pytestmark = pytest.mark.slow


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_training(run_a, run_b):
    a, b = metrics(run_a), metrics(run_b)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for key in ("train_loss", "train_rmse", "valid_rmse", "test_rmse", "lr"):
        assert [r[key] for r in a] == pytest.approx([r[key] for r in b], rel=1e-4), key


def cli(*args, env=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_torchrun_with_two_processes_matches_one_process(tmp_path):
    two = cli("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "plstm_graph", "train", *TINY, "--epochs", "2", "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert "with 2 processes" in two.stdout
    one = cli("-m", "plstm_graph", "train", *TINY, "--epochs", "2", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    assert_same_training(tmp_path / "two", tmp_path / "one")
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["status"] == "finished"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StopAfter:
    def __init__(self, epoch):
        self.epoch = epoch

    def __call__(self, epoch, record):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def _rank(rank, world_size, port, config, run_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    try:
        run_training(config, run_dir, progress=False, on_epoch_end=StopAfter(2))
    except KeyboardInterrupt:
        pass
    finally:
        torch.distributed.destroy_process_group()


def test_a_two_process_run_resumes_with_one_process(tmp_path, one_thread):
    config = TrainConfig(dataset="tpsa", model="gin", epochs=3, batch_size=8, hidden=16,
                         layers=2, heads=2, limit=24)
    mp.spawn(_rank, args=(2, _free_port(), config, tmp_path / "cut"), nprocs=2)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["epoch"] == 2
    assert not (tmp_path / "cut" / "summary.json").exists()

    resumed = run_training(config, tmp_path / "cut", progress=False)  # 1 process
    full = run_training(config, tmp_path / "full", progress=False)
    assert resumed["world_size"] == 1 and resumed["epochs"] == 3
    assert_same_training(tmp_path / "cut", tmp_path / "full")
