import math

import numpy as np
import pytest
import torch

from plstm_graph.data import get_dataset
from plstm_graph.data.ape import (APEConfig, Scene, arrow_strokes, generate, load_ape,
                                  parse_ape_spec, patchify, ray_hits_circle, relabel,
                                  render_scene, sample_scene, scene_seed)

CONFIG = APEConfig()  # ape-64: the paper's 192 px scenes drawn at a third of the size


@pytest.fixture(scope="module")
def samples():
    return generate(CONFIG, seed=42, num_samples=300)


def closest_approach(scene: Scene) -> float:
    """Distance from the circle's centre to the ray (to the arrow's centre when it points away)."""
    ux, uy = math.cos(scene.angle), math.sin(scene.angle)
    dx, dy = scene.circle_x - scene.arrow_x, scene.circle_y - scene.arrow_y
    along = max(0.0, dx * ux + dy * uy)
    return math.hypot(dx - along * ux, dy - along * uy)


def test_label_is_the_ray_circle_test_on_every_sample(samples):
    _, labels, scenes = samples
    assert [ray_hits_circle(scene) for scene in scenes] == labels.bool().tolist()
    # ... with the intersection factor's margin: hits within r / 1.2, misses beyond 1.2 r.
    for scene in scenes:
        distance = closest_approach(scene)
        if scene.hit:
            assert distance <= scene.radius / 1.2 + 1e-9
        else:
            assert distance >= 1.2 * scene.radius - 1e-9


def test_ray_circle_test_on_hand_made_scenes():
    base = dict(arrow_x=0.0, arrow_y=0.0, circle_x=100.0, circle_y=0.0, radius=10.0,
                arrow_length=20, arrow_width=2, hit=False)
    assert ray_hits_circle(Scene(angle=0.0, **base))  # straight at it
    assert ray_hits_circle(Scene(angle=math.atan2(9.9, 100), **base))  # grazing inside
    assert not ray_hits_circle(Scene(angle=math.atan2(10.2, 100), **base))  # just past the edge
    assert not ray_hits_circle(Scene(angle=math.pi, **base))  # pointing away


def test_geometry_follows_the_authors_rules(samples):
    _, _, scenes = samples
    side = CONFIG.canvas - 2 * CONFIG.boundary_padding
    for s in scenes:
        assert 15 <= s.radius <= 30 and 15 <= s.arrow_length < 30 and s.arrow_width in (2, 3)
        for x in (s.arrow_x, s.arrow_y, s.circle_x, s.circle_y):
            assert 30 <= x <= 30 + side
        # At least 2 r apart in x and in y, measured around the wrapped window.
        for a, c in ((s.arrow_x, s.circle_x), (s.arrow_y, s.circle_y)):
            assert min(abs(c - a), side - abs(c - a)) >= 2 * s.radius - 1e-9
    # The paper's mean arrow-circle distance at 192 px: 5.7 patches of 16 px.
    mean = np.mean([math.hypot(s.circle_x - s.arrow_x, s.circle_y - s.arrow_y) for s in scenes]) / 16
    assert 5.2 < mean < 6.2


def test_distances_double_at_the_extrapolation_size():
    def mean_distance(config):
        scenes = generate(config, seed=7, num_samples=200)[2]
        return np.mean([math.hypot(s.circle_x - s.arrow_x, s.circle_y - s.arrow_y) for s in scenes])

    ratio = mean_distance(APEConfig(size=128)) / mean_distance(CONFIG)
    assert 1.9 < ratio < 2.5  # the paper: 12.4 / 5.7 = 2.2 (objects keep their pixel size)


def test_rendering_draws_the_scene(samples):
    images, _, scenes = samples
    assert images.shape == (300, 64, 64) and images.dtype == torch.uint8
    for image, scene in zip(images[:50], scenes[:50]):
        ink = 1 - image.float() / 255
        col, row = int(scene.circle_x / 3), int(scene.circle_y / 3)
        assert ink[row, col] > 0.9  # inside the filled circle
        tip_x, tip_y = arrow_strokes(scene)[0][2:]
        row, col = int(tip_y / 3), int(tip_x / 3)
        assert ink[row - 1:row + 2, col - 1:col + 2].max() > 0.2  # at the arrow's tip
        # Nothing but the two objects: ink only near the circle or the arrow.
        ys, xs = torch.nonzero(ink > 0, as_tuple=True)
        px, py = (xs.double() + 0.5) * 3, (ys.double() + 0.5) * 3
        near_circle = torch.hypot(px - scene.circle_x, py - scene.circle_y) <= scene.radius + 4
        near_arrow = torch.hypot(px - scene.arrow_x, py - scene.arrow_y) <= scene.arrow_length / 2 + 6
        assert bool((near_circle | near_arrow).all())


def test_every_sample_regenerates_from_its_own_seed(samples):
    images, labels, scenes = samples
    again = generate(CONFIG, seed=42, num_samples=5, start=120)
    assert torch.equal(again[0], images[120:125]) and again[2] == scenes[120:125]
    alone = sample_scene(CONFIG, np.random.default_rng(scene_seed(42, 7)))
    assert alone == scenes[7]
    assert np.array_equal(render_scene(alone, CONFIG), images[7].numpy())
    other = generate(CONFIG, seed=43, num_samples=5)
    assert not torch.equal(other[0], images[:5])


def test_half_of_the_samples_are_hits(samples):
    _, labels, _ = samples
    more = generate(CONFIG, seed=1, num_samples=300)[1]
    rate = float(torch.cat([labels, more]).float().mean())
    assert abs(rate - 0.5) < 0.07  # 600 fair coins: 3.4 standard deviations


def test_patches_are_row_major():
    image = torch.arange(16 * 16, dtype=torch.float).view(1, 16, 16)
    patches = patchify(image, 8)
    assert patches.shape == (1, 4, 64)
    assert torch.equal(patches[0, 1], image[0, :8, 8:].reshape(-1))
    assert torch.equal(patches[0, 2], image[0, 8:, :8].reshape(-1))


def test_benchmark_sizes_splits_and_extrapolation():
    bench = load_ape(64, num_train=20, num_valid=6, num_test=8, num_extrapolation=4)
    assert bench.name == "ape-64" and bench.orientation == "given" and bench.metric == "acc"
    split = bench.split()
    assert [len(split[key]) for key in ("train", "valid", "test")] == [20, 6, 8]
    data = bench.dataset[0]
    assert data.x.shape == (64, 64) and data.x.dtype == torch.float32
    assert 0 <= float(data.x.min()) and float(data.x.max()) <= 1 and float(data.x.max()) > 0.9
    assert data.edge_index.shape == (2, 2 * 8 * 7) and data.pos.shape == (64, 2)
    assert data.y.shape == (1,) and bench.num_node_features == 64
    right = data.edge_index[:, (data.pos[data.edge_index[1]] - data.pos[data.edge_index[0]])[:, 1] == 1]
    down = data.edge_index[:, (data.pos[data.edge_index[1]] - data.pos[data.edge_index[0]])[:, 0] == 1]
    assert right.size(1) + down.size(1) == data.edge_index.size(1) == 112
    # Evaluation sets use the authors' fixed seeds: the training seed changes only training.
    other = load_ape(64, seed=5, num_train=20, num_valid=6, num_test=8, num_extrapolation=4)
    test = split["test"]
    assert torch.equal(other.dataset.images[test], bench.dataset.images[test])
    assert not torch.equal(other.dataset.images[:20], bench.dataset.images[:20])

    extrapolation = bench.extrapolation()
    assert extrapolation.config.size == 128 and extrapolation.config.downsample == 3
    assert len(extrapolation) == 4 and extrapolation[0].x.shape == (256, 64)
    assert extrapolation[0].edge_index.shape == (2, 2 * 16 * 15)
    assert len(bench.extrapolation(size=96, split="valid", num_samples=3)) == 3


def test_registry_name_and_errors():
    bench = get_dataset("ape-64", num_train=4, num_valid=2, num_test=2, num_extrapolation=2)
    assert len(bench) == 8 and bench.name == "ape-64"
    with pytest.raises(ValueError, match="name"):
        get_dataset("ape-big")
    with pytest.raises(ValueError, match="multiple of patch"):
        APEConfig(size=60)
    with pytest.raises(ValueError, match="too small"):
        APEConfig(size=32)
    with pytest.raises(ValueError, match="num_train"):
        load_ape(64, num_train=0)
    with pytest.raises(ValueError, match="split"):
        load_ape(64, num_train=2, num_valid=2, num_test=2).extrapolation(split="train")


def test_names_with_patch_and_downsample():
    assert parse_ape_spec("ape-64") == {"size": 64}
    assert parse_ape_spec("ape-192-p32-d1") == {"size": 192, "patch": 32, "downsample": 1}
    assert parse_ape_spec("ape-96-d2") == {"size": 96, "downsample": 2}
    assert parse_ape_spec("tpsa") is None
    for bad in ("ape-big", "ape-64-p", "ape-64-q8", "ape-64-p8-p16", "ape-64p8"):
        with pytest.raises(ValueError, match="name"):
            parse_ape_spec(bad)
    bench = load_ape(**parse_ape_spec("ape-96-p16-d2"), num_train=2, num_valid=2, num_test=2,
                     num_extrapolation=2)
    assert bench.config.grid == 6 and bench.dataset[0].x.shape == (36, 256)


def test_diagnostic_labels_follow_each_scene():
    bench = load_ape(64, num_train=40, num_valid=4, num_test=4, num_extrapolation=6)
    hits = bench.dataset.labels.clone()
    relabel(bench.dataset, "circle-right")
    scenes = bench.dataset.scenes
    assert [int(bench.dataset[i].y) for i in range(len(scenes))] == \
        [int(scene.circle_x > scene.arrow_x) for scene in scenes]
    larger = relabel(bench.extrapolation(), "points-right")
    assert larger.labels.tolist() == [int(math.cos(s.angle) > 0) for s in larger.scenes]
    assert 0 < int(larger.labels.sum()) < len(larger)
    torch.testing.assert_close(relabel(bench.dataset, "hit").labels, hits)
    with pytest.raises(ValueError, match="label must be one of hit, circle-right, points-right"):
        relabel(bench.dataset, "angle")
