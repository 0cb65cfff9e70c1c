"""Fault injection: processes killed while they rebuild, featurise or process data.

Each test forks the test process (fork is instant; a fresh interpreter would spend most of the
test importing torch) into its own process group, so that every process it starts, pool workers
included, can be found in /proc after it is killed, and ended by the test if it outlives it.
"""
import io
import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from tqdm import tqdm

from plstm_graph.data import featurize as featurize_module
from plstm_graph.data import get_dataset, rebuild_ogb

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file() or "fork" not in
                                multiprocessing.get_all_start_methods(), reason="needs fork and /proc")


def group_members(group: int) -> list:
    """Ids of the live (not zombie) processes in process group ``group``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        state, group_id = fields[0], int(fields[2])
        if group_id == group and state not in "ZX":
            members.append(int(stat.parent.name))
    return members


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def own_tqdm_lock() -> None:
    """Give this forked process a tqdm write lock of its own. tqdm's default lock holds a
    multiprocessing RLock that a forked child shares with its parent: a child killed while it
    draws a bar (ogb's processing does) leaves that lock held, and the test process then waits
    for it forever at its next bar."""
    lock, classes = threading.RLock(), [tqdm]
    while classes:  # ogb's tqdm.auto bars are a subclass, which may hold its own lock
        cls = classes.pop()
        cls.set_lock(lock)
        classes.extend(cls.__subclasses__())


def start_in_own_group(target, *args) -> multiprocessing.Process:
    def main():
        os.setpgid(0, 0)
        own_tqdm_lock()
        torch.set_num_threads(1)  # no OpenMP pool in a forked child
        target(*args)

    process = multiprocessing.get_context("fork").Process(target=main, daemon=False)
    process.start()
    assert wait_for(lambda: group_members(process.pid) or not process.is_alive(), 10), "no child"
    return process


def kill_and_check_nothing_is_left(process: multiprocessing.Process, sig: int) -> None:
    group = process.pid
    try:
        if process.is_alive():  # else it finished before this random point
            os.kill(group, sig)
        process.join(10)
        assert process.exitcode is not None
        # Orphaned pool workers notice within featurize.PARENT_POLL seconds.
        left = wait_for(lambda: not group_members(group), 10)
        assert left, f"processes left after the parent's {signal.Signals(sig).name}: {group_members(group)}"
    finally:
        for pid in group_members(group):  # only what this test started, if the check failed
            os.kill(pid, signal.SIGKILL)


def featurize_forever(smiles):
    featurize_module.PARALLEL_MIN = 1
    while True:
        featurize_module.featurize(smiles, workers=2)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pool_workers_exit_with_their_parent(shared_data, sig):
    smiles = list(pd.read_csv(shared_data / "moleculenet" / "bbbp.csv.gz")["smiles"][:400])
    process = start_in_own_group(featurize_forever, smiles)
    assert wait_for(lambda: len(group_members(process.pid)) >= 3, 20), "the pool did not start"
    kill_and_check_nothing_is_left(process, sig)


def hold_tqdm_lock_forever(holding):
    tqdm.get_lock().acquire()
    holding.set()
    time.sleep(60)


def test_a_child_killed_inside_a_progress_bar_does_not_block_the_parent():
    tqdm.get_lock()  # created before the fork, as after any earlier bar, so the child shares it
    holding = multiprocessing.get_context("fork").Event()
    process = start_in_own_group(hold_tqdm_lock_forever, holding)
    assert holding.wait(10), "the child did not take its lock"
    kill_and_check_nothing_is_left(process, signal.SIGKILL)
    bar = threading.Thread(target=lambda: tqdm(range(2), file=io.StringIO()).close(), daemon=True)
    bar.start()
    bar.join(10)
    assert not bar.is_alive(), "a bar in the test process waits for the killed child's lock"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_killed_rebuild_and_first_load_at_random_points(shared_data, tmp_path, seed):
    randomly = random.Random(seed)
    csv, root, size = shared_data / "moleculenet" / "bbbp.csv.gz", tmp_path / "root", 300

    def rebuild():
        featurize_module.PARALLEL_MIN = 1  # a pool even for this small slice
        rebuild_ogb("ogbg-molbbbp", csv, root, limit=size, workers=2, overwrite=True)

    process = start_in_own_group(rebuild)
    time.sleep(randomly.uniform(0, 2.0))
    kill_and_check_nothing_is_left(process, randomly.choice([signal.SIGKILL, signal.SIGTERM]))
    rebuild_ogb("ogbg-molbbbp", csv, root, limit=size, workers=1, overwrite=True)
    assert sorted(path.name for path in root.iterdir()) == ["ogbg_molbbbp"]

    process = start_in_own_group(lambda: get_dataset("ogbg-molbbbp", root=root, download=False))
    time.sleep(randomly.uniform(0, 1.0))
    kill_and_check_nothing_is_left(process, signal.SIGKILL)
    assert len(get_dataset("ogbg-molbbbp", root=root, download=False).dataset) == size
    assert list(root.rglob(".*")) == []  # no temporary file or folder left
