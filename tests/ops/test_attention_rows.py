"""The row stages of the attention cascades: the compiled ones against their PyTorch references."""
import pytest
import torch

from plstm_graph.ops.attention import einsum_attention, rows
from plstm_graph.testing import batch_of_sizes, outputs_and_grads

needs_rows = pytest.mark.skipif(rows.unavailable() is not None,
                                reason=f"compiled row stages unavailable: {rows.unavailable()}")
TOLERANCE = {torch.float32: dict(rtol=1e-6, atol=1e-30), torch.float64: dict(rtol=1e-14, atol=0.0)}


@pytest.fixture
def compiled_calls(monkeypatch):
    """The calls into the compiled library, for tests to assert that they reached it; with one
    torch thread, where the compiled stages take scores of any size."""
    calls, library = [], rows.library
    monkeypatch.setattr(rows, "library", lambda scalar: calls.append(scalar) or library(scalar))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield calls
    torch.set_num_threads(threads)


def scores_and_rows(dtype, keys, seed=0):
    r"""Scores [H=2, A=2, C=3, keys] with masked (-inf) entries, a fully masked row and a NaN
    (its row's max is NaN, as in torch.amax), and per-row state as views of a [H, T=4, C]
    layout (tiles 1-2: strided between heads)."""
    g = torch.Generator().manual_seed(seed)
    S = torch.randn(2, 2, 3, keys, generator=g, dtype=dtype) * 8
    S[torch.rand(S.shape, generator=g) < 0.3] = float("-inf")
    S[0, 1, 2] = float("-inf")
    S[1, 0, 1, -1] = float("nan")
    state = [torch.randn(2, 4, 3, generator=g, dtype=dtype) for _ in range(3)]
    state[0][1, 1, 0] = float("-inf")  # a row that has met no key yet
    return S, state


def compiled_and_reference(fn, reference, S, state, *args):
    """Runs both on copies; returns their (scores, state..., result)."""
    runs = []
    for f in (fn, reference):
        S2, state2 = S.clone(), [x.clone() for x in state]
        result = f(S2, *(x[:, 1:3] for x in state2), *args)
        runs.append((S2, *state2, result))
    return runs


@needs_rows
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("keys", [1, 13, 64])  # below, between and at whole vector lanes
@pytest.mark.parametrize("first", [True, False])
def test_online_softmax_equals_reference(dtype, keys, first, compiled_calls):
    S, state = scores_and_rows(dtype, keys)
    got, want = compiled_and_reference(rows.online_softmax_, rows.online_softmax_reference,
                                       S, state[:2], first)
    for a, b in zip(got, want):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, **TOLERANCE[dtype], equal_nan=True)
    assert (got[0][0, 1, 2] == 0).all()  # a row without keys: weights 0
    if first:
        assert got[2][0, 2, 2] == 0  # and its denominator 0
    assert got[0][1, 0, 1].isnan().all() and got[1][1, 1, 1].isnan()  # a NaN: row and max
    assert compiled_calls


@needs_rows
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("keys", [1, 13, 64])
def test_exp2_shifted_and_delta_times_equal_references(dtype, keys, compiled_calls):
    S, state = scores_and_rows(dtype, keys)
    state[0][1, 1, 0] = 0.0  # an LSE is never -inf
    state[0][0, 2, 1] = float("inf")  # LSE of a row without keys
    got, want = compiled_and_reference(rows.exp2_shifted_, rows.exp2_shifted_reference,
                                       S, state[:1])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOLERANCE[dtype], equal_nan=True)
    P = got[0]
    got, want = compiled_and_reference(
        lambda dP, delta: rows.delta_times_(dP, P, delta),
        lambda dP, delta: rows.delta_times_reference(dP, P, delta),
        torch.randn_like(S), state[2:])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOLERANCE[dtype], equal_nan=True)
    assert len(compiled_calls) == 2


@needs_rows
def test_float32_exp2_is_within_a_few_ulp_and_keeps_special_values(compiled_calls):
    x = torch.cat([torch.linspace(-126, 0, 100_003), torch.linspace(0, 127, 10_007)])
    S = x.reshape(1, 1, 1, -1).clone()
    rows.exp2_shifted_(S, torch.zeros(1, 1, 1))
    assert compiled_calls  # the polynomial, not torch.exp2
    exact = torch.exp2(x.double())
    assert ((S.flatten().double() - exact).abs() / exact).max() < 4e-7
    special = torch.tensor([float("-inf"), -1000.0, -126.5, float("nan"), 128.0, float("inf")])
    S = special.reshape(1, 1, 1, -1).clone()
    rows.exp2_shifted_(S, torch.zeros(1, 1, 1))
    assert S.flatten()[:3].tolist() == [0.0, 0.0, 0.0]  # exactly 0: masked scores weigh nothing
    assert S.flatten()[3].isnan() and S.flatten()[4:].tolist() == [float("inf")] * 2


def test_tensors_the_kernels_do_not_take_go_to_the_references():
    S, state = scores_and_rows(torch.float64, 16)
    shift = state[0][:, 1:3].clamp_min(0.0)
    view = S[..., ::2]  # not contiguous
    want = rows.exp2_shifted_reference(view.clone(), shift)
    assert rows.exp2_shifted_(view, shift) is view
    # torch's own exp2 on a strided view and on a contiguous copy: 1 ulp apart
    torch.testing.assert_close(view, want, **TOLERANCE[torch.float64], equal_nan=True)
    half = S.half()
    got = rows.exp2_shifted_(half.clone(), shift.half())
    torch.testing.assert_close(got, rows.exp2_shifted_reference(half, shift.half()),
                               equal_nan=True)


@needs_rows
def test_large_scores_keep_torch_threads(monkeypatch):
    def no_library(scalar):
        raise AssertionError("the compiled stages ran")

    monkeypatch.setattr(rows, "library", no_library)
    S, shift = torch.zeros(1, 1, 2, rows.PARALLEL_FROM // 2), torch.zeros(1, 1, 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert (rows.exp2_shifted_(S, shift) == 1).all()
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(AssertionError, match="compiled stages ran"):
        torch.set_num_threads(1)
        try:
            rows.exp2_shifted_(S, shift)
        finally:
            torch.set_num_threads(threads)


def test_switched_off_they_are_unavailable(monkeypatch):
    rows.unavailable.cache_clear()
    monkeypatch.setenv("PLSTM_GRAPH_NO_COMPILE", "1")
    try:
        assert rows.unavailable() == "PLSTM_GRAPH_NO_COMPILE is set"
    finally:
        rows.unavailable.cache_clear()


@needs_rows
@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_with_compiled_rows_equals_it_with_the_references(compiled_calls, causal,
                                                                    dtype, atol):
    # One graph over several tiles (blocks, padded last tile) beside packed small ones.
    batch = batch_of_sizes((150, 7, 0, 30, 1))
    g = torch.Generator().manual_seed(1)
    qkv = [torch.randn(batch.numel(), 2, 8, generator=g, dtype=dtype) for _ in range(3)]

    def attention(q, k, v):
        return einsum_attention(q, k, v, batch, chunk_size=16, causal=causal)

    out, grads = outputs_and_grads(attention, qkv)
    assert compiled_calls
    calls = len(compiled_calls)
    with rows.references():  # forward and backward
        want_out, want_grads = outputs_and_grads(attention, qkv)
    assert len(compiled_calls) == calls
    for got, want in zip([out, *grads], [want_out, *want_grads]):
        torch.testing.assert_close(got, want, rtol=0, atol=atol)


@needs_rows
def test_what_the_kernels_write_is_seen_by_autograd_and_aliases_go_to_the_reference(
        compiled_calls):
    S, state = scores_and_rows(torch.float64, 8)
    version = S._version
    rows.exp2_shifted_(S, state[0][:, 1:3].clamp_min(0.0))
    assert compiled_calls and S._version > version
    dP = torch.randn_like(S)
    alias = dP.clone()
    want = rows.delta_times_reference(alias, alias, state[2][:, 1:3])
    calls = len(compiled_calls)
    torch.testing.assert_close(rows.delta_times_(dP, dP, state[2][:, 1:3]), want)  # P is dP
    assert len(compiled_calls) == calls
