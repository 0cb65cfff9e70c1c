import dataclasses
import math

import pytest
import torch

import plstm_graph as pg
from plstm_graph.ops.attention import einsum_attention
from plstm_graph.ops.attention.one_pass import OnePassAttention
from plstm_graph.ops.attention.tiles import STEP_TILE_PAIRS, TILE_ALIGN, Step, Tiles
from plstm_graph.ops.attention.two_pass import two_pass_tiles
from plstm_graph.testing import (assert_same_outputs_and_grads, batch_of_sizes, graphwise_sdpa,
                                 outputs_and_grads)

#: graphs of 0 (leading and inner: missing ids), 7, 100, 1 and 64 nodes, not sorted by size
SIZES = (0, 7, 0, 100, 1, 64)
QKV = ("q", "k", "v")


def random_qkv(num_nodes, heads=2, key_dim=8, value_dim=5, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(num_nodes, heads, dim, generator=generator, dtype=dtype)
            for dim in (key_dim, key_dim, value_dim)]


@pytest.mark.parametrize("causal", [False, True])
# 13 divides no size; 128 > 100: every graph packed whole; 10**9: tiles sized from the graphs
@pytest.mark.parametrize("chunk_size", [1, 13, 128, 10**9])
@pytest.mark.parametrize("passes", [1, 2, 3])
def test_equals_sdpa_graph_by_graph(passes, chunk_size, causal):
    batch = batch_of_sizes(SIZES)
    assert_same_outputs_and_grads(
        lambda q, k, v: einsum_attention(q, k, v, batch, passes=passes, chunk_size=chunk_size,
                                         causal=causal),
        lambda q, k, v: graphwise_sdpa(q, k, v, batch, causal=causal),
        random_qkv(batch.numel()), names=QKV, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
# 64: whole tiles, packing is a view; 100: 7 tiles, blocks of 3 query tiles x 2 key tiles;
# 300: 19 tiles, more than STEP_TILE_PAIRS: blocks of 4 query tiles x 4 key tiles
@pytest.mark.parametrize("num_nodes", [50, 64, 100, 300])
@pytest.mark.parametrize("passes", [1, 2, 3])
def test_one_graph_without_batch_and_custom_scale(passes, num_nodes, causal):
    assert_same_outputs_and_grads(
        lambda q, k, v: einsum_attention(q, k, v, passes=passes, chunk_size=16, scale=0.3,
                                         causal=causal),
        lambda q, k, v: graphwise_sdpa(q, k, v, scale=0.3, causal=causal),
        random_qkv(num_nodes, heads=3, key_dim=4, value_dim=6), names=QKV, atol=1e-10)


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_float32_close_to_sdpa(passes):
    batch = batch_of_sizes(SIZES)
    q, k, v = random_qkv(batch.numel(), dtype=torch.float32)
    torch.testing.assert_close(einsum_attention(q, k, v, batch, passes=passes, chunk_size=16),
                               graphwise_sdpa(q, k, v, batch), atol=1e-5, rtol=1e-5)


# Computed in the input dtype instead, the errors reach 2e-3 and 2e-2.
@pytest.mark.parametrize("dtype, tol", [(torch.float16, 1e-3), (torch.bfloat16, 8e-3)])
@pytest.mark.parametrize("passes", [1, 2, 3])
def test_half_precision_against_float64(passes, dtype, tol):
    """Half inputs are computed in float32: only the rounding of the results to ``dtype``
    separates them from float64 on the same (rounded) inputs."""
    batch = batch_of_sizes(SIZES)
    inputs = [x.to(dtype) for x in random_qkv(batch.numel(), dtype=torch.float32)]
    cotangent = torch.randn(batch.numel(), 2, 5, generator=torch.Generator().manual_seed(1))
    out, grads = outputs_and_grads(
        lambda q, k, v: einsum_attention(q, k, v, batch, passes=passes, chunk_size=13),
        inputs, cotangent.to(dtype))
    want, want_grads = outputs_and_grads(lambda q, k, v: graphwise_sdpa(q, k, v, batch),
                                         [x.double() for x in inputs], cotangent.to(dtype).double())
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    for name, got, expected in zip(("output",) + QKV, [out] + grads, [want] + want_grads):
        torch.testing.assert_close(got.double(), expected, atol=tol, rtol=0,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("passes", [1, 2, 3])
def test_gradcheck(passes, causal):
    batch = batch_of_sizes((2, 0, 1, 3))
    inputs = [x.requires_grad_() for x in random_qkv(batch.numel(), heads=1, key_dim=2,
                                                     value_dim=2)]
    assert torch.autograd.gradcheck(
        lambda q, k, v: einsum_attention(q, k, v, batch, passes=passes, chunk_size=2,
                                         causal=causal), inputs)


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_no_nodes(passes):
    q, k, v = [x.requires_grad_() for x in random_qkv(0)]
    out = einsum_attention(q, k, v, torch.zeros(0, dtype=torch.long), passes=passes)
    assert out.shape == (0, 2, 5)
    out.sum().backward()  # runs; an input the empty output does not use gets no gradient
    assert all(x.grad is None or x.grad.shape == x.shape for x in (q, k, v))


@pytest.mark.parametrize("kernel", ["one_pass", "two_pass"])
def test_rows_without_keys_give_zero_not_nan(kernel):
    """Hide keys from the tiles: all keys of graph 0 (its rows have nothing to attend to),
    and the first key tile of graph 1 (its rows meet keys only from the second step on)."""
    batch, scale = batch_of_sizes((5, 12)), 0.5
    q, k, v = random_qkv(17)
    # Graph 1's scores are all near -1000: exp underflows unless shifted by their true max.
    q[5:], k[5:] = q[5:].abs() + 1, -100 * (k[5:].abs() + 1)
    tiles = Tiles.from_batch(batch, 17, chunk_size=4)
    hidden = torch.zeros(tiles.num_tiles * 4, dtype=torch.bool)
    hidden[tiles.slot[:9]] = True
    tiles = dataclasses.replace(tiles, valid=tiles.valid & ~hidden.view(-1, 4),
                                steps=[dataclasses.replace(s, masked=True) for s in tiles.steps])

    def attention(q, k, v):
        if kernel == "one_pass":
            return OnePassAttention.apply(q, k, v, tiles, scale)
        return tiles.unpack(two_pass_tiles(tiles.pack(q) * scale, tiles.pack(k), tiles.pack(v),
                                           tiles))

    def oracle(q, k, v):  # graph 0 gives 0; graph 1 attends to its last 8 keys only
        q1, k1, v1 = (x.transpose(0, 1) for x in (q[5:], k[9:], v[9:]))
        out1 = torch.nn.functional.scaled_dot_product_attention(q1, k1, v1, scale=scale)
        return torch.cat([v.new_zeros(5, 2, 5), out1.transpose(0, 1)])

    out, grads = outputs_and_grads(attention, [q, k, v])
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    assert (out[:5] == 0).all() and (grads[0][:5] == 0).all()
    assert_same_outputs_and_grads(attention, oracle, [q, k, v], names=QKV, atol=1e-10)


def test_tiles_layout():
    batch = batch_of_sizes(SIZES)
    tiles = Tiles.from_batch(batch, batch.numel(), chunk_size=13)
    x = torch.randn(batch.numel(), 2, 3)
    torch.testing.assert_close(tiles.unpack(tiles.pack(x)), x, atol=0, rtol=0)
    # 100 and 64 nodes take tiles 0-7 and 8-12; 7 and 1 share tile 13 (block-diagonal mask)
    assert tiles.num_large == 13 and tiles.num_steps == 1 + 8  # the diagonal step, then
    diagonal, *steps = tiles.steps                          # ceil(100 / 13) over the keys
    assert diagonal.rows == slice(13, 14) and diagonal.diagonal and diagonal.masked
    assert [s.rows.stop for s in steps] == [8 + 5] * 5 + [8] * 3
    assert all(s.rows.start == 0 for s in steps)
    # Both large graphs at steps 0-4: key tile j of each; the 100-node one alone: key tile j
    assert steps[1].keys.tolist() == [1] * 8 + [9] * 5
    assert [s.span for s in steps] == [None] * 5 + [slice(5, 6), slice(6, 7), slice(7, 8)]
    assert [s.masked for s in steps] == [False] * 4 + [True, False, False, True]
    assert tiles.graph[-1].tolist() == [1] * 7 + [4] + [-1] * 5 and tiles.mixed
    assert int(tiles.valid.sum()) == batch.numel() and not tiles.identity
    # The largest graph left opens a tile, the smallest left fill it: 3 tiles (4 in order).
    packed = Tiles.from_batch(batch_of_sizes((3, 3, 1, 1, 4)), 12, chunk_size=4)
    assert packed.graph.tolist() == [[4] * 4, [1, 1, 1, 2], [0, 0, 0, 3]]
    assert packed.steps == [Step(slice(0, 3), masked=True, first=True)] and packed.mixed
    assert Tiles.from_batch(batch_of_sizes((32, 0, 16)), 48, chunk_size=16).identity


@pytest.mark.parametrize("num_tiles", [2, 3, 4, 13, 64])
def test_one_large_graph_in_blocks(num_tiles):
    """One multi-tile graph: blocks of query tiles meet runs of key tiles; every pair of
    tiles meets exactly once, and no step holds the scores of more than
    min(n, STEP_TILE_PAIRS) pairs of tiles."""
    C = 16
    tiles = Tiles.from_batch(None, num_tiles * C - 3, chunk_size=C)
    pairs = min(num_tiles, STEP_TILE_PAIRS)
    met = torch.zeros(num_tiles, num_tiles, dtype=torch.long)
    for step in tiles.steps:
        met[step.rows, step.span] += 1
        width = step.rows.stop - step.rows.start
        assert width * (step.span.stop - step.span.start) <= pairs
        assert step.masked == (step.span.stop == num_tiles)  # the padded last tile
    assert (met == 1).all()
    r = 1 << (math.isqrt(pairs).bit_length() - 1)  # the widest run with r * r <= pairs
    assert tiles.steps[0].span == slice(0, r) and tiles.steps[0].rows == slice(0, pairs // r)


@pytest.mark.parametrize("passes", [1, 2])
def test_a_layout_built_once_serves_every_call_on_the_batch(passes):
    batch = batch_of_sizes(SIZES)
    tiles = Tiles.from_batch(batch, batch.numel(), chunk_size=13, causal=True)
    assert_same_outputs_and_grads(
        lambda q, k, v: einsum_attention(q, k, v, batch, passes=passes, chunk_size=13,
                                         causal=True, tiles=tiles),
        lambda q, k, v: graphwise_sdpa(q, k, v, batch, causal=True),
        random_qkv(batch.numel()), names=QKV, atol=1e-10)


def test_a_layout_of_another_call_is_refused():
    batch = batch_of_sizes((3, 5))
    q, k, v = random_qkv(8)
    for tiles, wrong in ((Tiles.from_batch(batch[:5], 5, 4), "of 5 nodes"),
                         (Tiles.from_batch(batch, 8, 4, causal=True), "causal=True"),
                         (Tiles.from_batch(batch, 8, 16), "tile size 16")):
        with pytest.raises(ValueError, match=f"`tiles` must be the layout .*{wrong}"):
            einsum_attention(q, k, v, batch, chunk_size=4, tiles=tiles)
    with pytest.raises(ValueError, match="`tiles` must be a Tiles layout or None, got dict"):
        einsum_attention(q, k, v, batch, tiles={})


def test_a_model_builds_one_layout_per_batch(monkeypatch):
    """Every attention block of a model sees the same batch: the layout with its masks is
    built once (about 1 ms on a molecule batch, 5-10 % of an attention call)."""
    from torch_geometric.data import Batch, Data
    calls = []
    build = Tiles.from_batch.__func__
    monkeypatch.setattr(Tiles, "from_batch",
                        classmethod(lambda cls, *args, **kw: calls.append(1) or build(cls, *args, **kw)))
    graphs = [Data(x=torch.randn(n, 3), edge_index=torch.empty(2, 0, dtype=torch.long),
                   y=torch.zeros(1)) for n in (3, 5, 9)]
    model = pg.nn.GraphModel("attention", 1, node_channels=3, hidden=16, layers=3)
    model(Batch.from_data_list(graphs)).sum().backward()
    assert len(calls) == 1


@pytest.mark.parametrize("chunk_size", [1, 4, 10, 64, 10**9])
def test_tiles_follow_the_graphs_not_chunk_size(chunk_size):
    """Memory is O(nodes x min(chunk_size, graph size)): tiles are no wider than the largest
    graph rounded up to TILE_ALIGN, and packing leaves fewer than 2 N / C + 1 of them (no
    graph padded to a tile)."""
    generator = torch.Generator().manual_seed(chunk_size % 1000)
    sizes = torch.randint(0, 40, (50,), generator=generator).tolist() + [5]
    batch = batch_of_sizes(sizes)
    tiles = Tiles.from_batch(batch, batch.numel(), chunk_size)
    C = tiles.chunk_size
    assert C == min(chunk_size, -(-max(sizes) // TILE_ALIGN) * TILE_ALIGN)
    assert tiles.position.shape == (tiles.num_tiles, C)
    assert tiles.num_tiles * C < 2 * batch.numel() + C


def test_huge_chunk_size_on_a_small_graph_allocates_one_small_tile():
    # Tiles of chunk_size slots made this call allocate 22 GB before.
    tiles = Tiles.from_batch(None, 5, chunk_size=10**9)
    assert (tiles.chunk_size, tiles.num_tiles) == (TILE_ALIGN, 1)
    q, k, v = [x.requires_grad_() for x in random_qkv(5)]
    einsum_attention(q, k, v, chunk_size=10**9).sum().backward()
    assert all(x.grad.shape == x.shape for x in (q, k, v))


@pytest.mark.parametrize("kwargs, match", [
    (dict(q=torch.randn(4, 2)), "`q`"),
    (dict(k=torch.randn(4, 2, 5)), "`k`"),
    (dict(v=torch.randn(3, 2, 5)), "`v`"),
    (dict(q=torch.randint(0, 3, (4, 2, 3))), "`q`"),
    (dict(v=torch.randn(4, 2, 5, dtype=torch.float64)), "`v`"),
    (dict(batch=torch.tensor([0, 0, 1])), "`batch`"),
    (dict(batch=torch.tensor([0, 1, 0, 1])), "`batch`"),
    (dict(batch=torch.tensor([-1, 0, 0, 0])), "`batch`"),
    (dict(batch=torch.tensor([0.0, 0.0, 1.0, 1.0])), "`batch`"),
    (dict(passes=4), "`passes`"),
    (dict(passes=True), "`passes`"),
    (dict(chunk_size=0), "`chunk_size`"),
    (dict(chunk_size=2.0), "`chunk_size`"),
    (dict(causal="yes"), "`causal`"),
    (dict(scale="0.5"), "`scale`"),
])
def test_bad_input_raises_value_error(kwargs, match):
    args = dict(q=torch.randn(4, 2, 3), k=torch.randn(4, 2, 3), v=torch.randn(4, 2, 5),
                batch=torch.tensor([0, 0, 1, 1]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        einsum_attention(**args)


def test_public_name():
    assert pg.einsum_attention is einsum_attention
