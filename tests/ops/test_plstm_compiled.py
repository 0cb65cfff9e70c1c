"""The compiled per-edge sweep: how it is built, when auto takes it, and its numerics on the
graphs the Python backends cannot make fast (one large grid, a batch of grids)."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

import plstm_graph as pg
from plstm_graph.graph.grid import grid_line_graph
from plstm_graph.ops import c_build
from plstm_graph.ops.plstm import auto_backend, compiled
from plstm_graph.testing import (PLSTM_INPUT_NAMES, RING_SMILES, assert_plstm_matches_reference,
                                 assert_same_outputs_and_grads, chain, disjoint_union, molecule,
                                 random_plstm_inputs, random_tree)

needs_sweep = pytest.mark.skipif(not compiled.available(),
                                 reason=f"compiled sweep unavailable: {compiled.unavailable()}")


@pytest.fixture
def fresh_availability():
    """``unavailable()`` is decided once per process; these tests decide it again."""
    compiled.unavailable.cache_clear()
    yield
    compiled.unavailable.cache_clear()


def test_builds_wherever_a_compiler_is():
    if c_build.compiler() is None or os.environ.get("PLSTM_GRAPH_NO_COMPILE"):
        pytest.skip("no C compiler here (or PLSTM_GRAPH_NO_COMPILE set)")
    assert compiled.unavailable() is None


@needs_sweep
def test_build_compiles_into_an_empty_cache_and_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PLSTM_GRAPH_KERNEL_CACHE", str(tmp_path / "cache"))
    built = compiled.build("double")
    assert built.parent == tmp_path / "cache" and built.suffix == ".so"
    assert [p.name for p in built.parent.iterdir()] == [built.name]  # no partial file left
    stamp = built.stat().st_mtime_ns
    assert compiled.build("double") == built and built.stat().st_mtime_ns == stamp


def test_an_unusable_cache_folder_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PLSTM_GRAPH_KERNEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    assert c_build.cache_dir() == tmp_path / "home" / ".cache" / "plstm_graph" / "kernels"
    (tmp_path / "a-file").write_text("")  # no folder can be made below a file, even by root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    fallback = c_build.cache_dir()
    assert fallback.parent == Path(tempfile.gettempdir())
    assert fallback.name.startswith("plstm_graph_kernels_") and not fallback.stat().st_mode & 0o077


@needs_sweep
def test_a_shared_cache_holds_libraries_others_can_read(tmp_path, monkeypatch):
    monkeypatch.setenv("PLSTM_GRAPH_KERNEL_CACHE", str(tmp_path))
    old = os.umask(0o022)
    try:
        built = compiled.build("float")
    finally:
        os.umask(old)
    assert built.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600


@needs_sweep
def test_cc_may_carry_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("PLSTM_GRAPH_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", f"{shutil.which('cc') or shutil.which('gcc')} -g0")
    assert compiled.build("float").exists()


def test_a_failing_compiler_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PLSTM_GRAPH_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", shutil.which("false") or "false")
    with pytest.raises(RuntimeError, match="failed on plstm_sweep.c"):
        compiled.build("float")
    assert list(tmp_path.iterdir()) == []


def test_switched_off_it_is_unavailable_and_auto_keeps_python(monkeypatch, fresh_availability):
    monkeypatch.setenv("PLSTM_GRAPH_NO_COMPILE", "1")
    assert compiled.unavailable() == "PLSTM_GRAPH_NO_COMPILE is set"
    g = pg.prepare_dag(*molecule(RING_SMILES[-1]))
    assert auto_backend(g) == "parallel"
    inputs = random_plstm_inputs(g, 1, 2, 2)
    with pytest.raises(RuntimeError, match="'compiled' is not available here: PLSTM_GRAPH_NO"):
        pg.plstm(*inputs, g, backend="compiled")


@needs_sweep
def test_auto_takes_it_for_every_cpu_graph():
    small = pg.prepare_dag(*molecule(RING_SMILES[-1]))
    large = pg.prepare_dag(*chain(600), orientation="given")
    grid = grid_line_graph(8, 8, "top-left", "D", count=3)
    assert {auto_backend(g) for g in (small, large, grid)} == {"compiled"}


@needs_sweep
@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("corner", ["top-left", "bottom-right"])
def test_grid_batch_matches_reference(mode, corner):
    assert_plstm_matches_reference(grid_line_graph(5, 7, corner, mode, count=2), "compiled")


@needs_sweep
@pytest.mark.parametrize("heads,key_dim,value_dim",
                         [(1, 1, 1), (3, 5, 2), (2, 8, 8), (2, 16, 16), (1, 24, 24), (1, 32, 32),
                          (1, 16, 32), (1, 9, 33), (1, 13, 12)])
def test_head_sizes(heads, key_dim, value_dim):
    # Sums over the value size run in blocks of 8, and rows of a cell in groups of 4 (double)
    # or 8 (float): sizes below, at and across a block or group; and the sizes with copies of
    # their own (8, 16, 24, 32 square).
    gen = torch.Generator().manual_seed(3)
    union = disjoint_union([random_tree(11, gen), molecule(RING_SMILES[2]), chain(4)])
    g = pg.prepare_dag(*union, mode="D")
    assert_plstm_matches_reference(g, "compiled", heads, key_dim, value_dim)


@needs_sweep
def test_float32_is_computed_in_float32():
    g = pg.prepare_dag(*molecule(RING_SMILES[-1]))
    inputs = random_plstm_inputs(g, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    want = pg.plstm(*inputs, g, backend="reference")
    got = pg.plstm(*(x.float() for x in inputs), g, backend="compiled")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


@needs_sweep
@pytest.mark.parametrize("heads,key_dim,value_dim",
                         [(2, 8, 8), (2, 16, 16), (1, 24, 24), (1, 32, 32), (1, 13, 24), (1, 16, 12)])
def test_float32_gradients(heads, key_dim, value_dim):
    # float32 has its own vector paths (8 rows of a cell at a time where V is a multiple of 8).
    g = pg.prepare_dag(*disjoint_union([molecule(RING_SMILES[2]), chain(5)]))
    inputs = random_plstm_inputs(g, heads, key_dim, value_dim,
                                 generator=torch.Generator().manual_seed(1))
    assert_same_outputs_and_grads(
        lambda *xs: pg.plstm(*(x.float() for x in xs), g, backend="compiled").double(),
        lambda *xs: pg.plstm(*xs, g, backend="reference"), inputs, names=PLSTM_INPUT_NAMES,
        atol=1e-5, rtol=1e-4)


@needs_sweep
def test_inputs_in_any_memory_layout():
    g = pg.prepare_dag(*molecule(RING_SMILES[3]))
    q, k, v, s, t, m, d = random_plstm_inputs(g, 2, 3, 3)
    # Heads-first tensors, transposed back: same values, not contiguous.
    strided = [x.transpose(0, 1).contiguous().transpose(0, 1) for x in (q, k, v, s, t, m, d)]
    assert not strided[0].is_contiguous()
    torch.testing.assert_close(pg.plstm(*strided, g, backend="compiled"),
                               pg.plstm(q, k, v, s, t, m, d, g, backend="reference"),
                               atol=1e-12, rtol=0)


@needs_sweep
def test_a_large_value_size_needs_no_stack():
    # V floats of readout used to live on the C stack (8 MiB by default).
    g = pg.prepare_dag(*chain(3), orientation="given")
    q, k, v, s, t, m, d = random_plstm_inputs(g, 1, 1, 3_000_000, dtype=torch.float32)
    got = pg.plstm(q, k, v, s, t, m, d, g, backend="compiled")
    torch.testing.assert_close(got, pg.plstm(q, k, v, s, t, m, d, g, backend="levels"))


@needs_sweep
def test_graphs_with_int32_indices():
    g = pg.prepare_dag(*molecule(RING_SMILES[2]))
    narrow = pg.LineGraph(g.edge_index.int(), g.edge_id.int(), g.line_index.int(),
                          g.edge_level, g.num_nodes, g.mode)
    inputs = random_plstm_inputs(g, 2, 3, 3)
    torch.testing.assert_close(pg.plstm(*inputs, narrow, backend="compiled"),
                               pg.plstm(*inputs, g, backend="reference"), atol=1e-12, rtol=0)


@needs_sweep
def test_direct_calls_check_their_inputs():
    g = pg.prepare_dag(*chain(4), orientation="given")
    q, k, v, s, t, m, d = random_plstm_inputs(g, 2, 3, 3)
    with pytest.raises(ValueError, match="k must have the dtype of q"):
        compiled.plstm_compiled(q, k.float(), v, s, t, m, d, g)
    with pytest.raises(ValueError, match=r"transition must have shape \[2, 2\]"):
        compiled.plstm_compiled(q, k, v, s, t[:1], m, d, g)


@needs_sweep
def test_a_malformed_line_graph_is_refused():
    g = pg.prepare_dag(*disjoint_union([chain(3), chain(3)]), orientation="given")
    crossing = pg.LineGraph(g.edge_index, g.edge_id, torch.tensor([[0, 1], [3, 2]]),
                            g.edge_level, g.num_nodes, g.mode)  # 0 -> 3 joins the two chains
    with pytest.raises(ValueError, match="joins two weakly connected components"):
        pg.plstm(*random_plstm_inputs(crossing, 1, 2, 2), crossing, backend="compiled")
