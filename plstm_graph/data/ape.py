"""Arrow-pointing extrapolation (APE): does the arrow, extended as a ray, hit the circle?

The task of the pLSTM paper (Pöppel et al., arXiv 2506.11997, section 5.1). The geometry and
the sampling follow the authors' generator (github.com/ml-jku/arrow_pointing_dataset,
``generate_random_positions`` and ``draw_arrow_and_circle``) with the settings of their
experiments (ml-jku/plstm_experiments ``config/dataset/arrow_pointing*.yaml``); the code here
is written anew:

* a white canvas with a filled black circle of radius U(15, 30) and an arrow (a shaft and two
  head strokes) of length ``int(U(15, 30))`` and width ``int(U(2, 4))`` (2 or 3) px, centred at
  a uniform point inside a 30 px boundary padding;
* the circle's centre lies at least ``2 r`` from the arrow's centre in x and in y (wrapping
  around the padded window);
* the ray from the arrow's centre passes within ``r / 1.2`` of the circle's centre for a hit,
  and no closer than ``1.2 r`` (or points away) for a miss: the intersection factor 1.2 keeps
  the two classes apart; half of the samples are hits;
* sample ``i`` of a set with seed ``s`` is drawn by ``default_rng(g + i)``, where ``g`` is the
  first 62-bit integer of ``default_rng(s)``, so any sample can be regenerated alone.

Object sizes are fixed in pixels, so a larger canvas means longer distances between arrow and
circle: that is what the extrapolation set tests.

**Scale.** The paper trains at 192 px (patch 16: 12 x 12 patches) and extrapolates to 384 px.
On a CPU we work at a third of that: an ``ape-64`` image is the paper's 192 px scene drawn at
192 px and box-filtered down by ``downsample = 3`` (so thin strokes survive as grey levels), and
its 2x extrapolation is the paper's 384 px scene reduced to 128 px. Every geometric quantity is
in the paper's units (pixels of the canvas before downsampling); ``downsample`` is the same for
the training and the extrapolation sizes.

Graphs. An image becomes a grid of ``patch x patch`` patches (default 8: 8 x 8 patches at 64 px,
16 x 16 at 128 px), node ``r * width + c`` for the patch in row ``r`` and column ``c``; ``x``
holds the patch's ink (``1 - grey / 255``, background 0) row-major, ``pos`` its ``(row, col)``,
``edge_index`` the grid DAG's edges to the right and down (orientation ``"given"``).
"""
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Dict, NamedTuple, Optional

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch_geometric.data import Data, Dataset

from plstm_graph.data.benchmark import BenchmarkDataset
from plstm_graph.graph.grid import corner_coordinates, grid_edge_index
from plstm_graph.graph.validation import check_one_of, check_positive_int

#: The prefix of the dataset family: ``ape-64`` is 64 px images.
APE_PREFIX = "ape-"

#: Seeds of the splits, the authors' (plstm_experiments ``arrow_pointing_extrapolation.yaml``):
#: validation 100042, test 200042, and one more for each extrapolation split.
SPLIT_SEEDS = {"valid": 100042, "test": 200042}
EXTRAPOLATION_SEEDS = {"valid": 100043, "test": 200043}


@dataclass(frozen=True)
class APEConfig:
    """The generator's settings; lengths in pixels of the canvas before downsampling.

    Attributes:
        size: side of the final image in pixels (a multiple of ``patch``).
        downsample: the scene is drawn at ``size * downsample`` px and box-filtered down.
        patch: side of a patch in final pixels.
        min_radius, max_radius: circle radius range.
        arrow_length_min, arrow_length_max: arrow length range (``int(U(min, max))``).
        arrow_width_min, arrow_width_max: stroke width range (``int(U(min, max))``).
        boundary_padding: margin the arrow and circle centres keep from the border.
        min_dist_factor: the circle centre is at least this many radii from the arrow's centre
            in x and in y.
        intersection_factor: hits pass within ``r / f`` of the centre, misses no closer than ``f r``.
        hit_ratio: probability of a hit.
    """

    size: int = 64
    downsample: int = 3
    patch: int = 8
    min_radius: float = 15.0
    max_radius: float = 30.0
    arrow_length_min: float = 15.0
    arrow_length_max: float = 30.0
    arrow_width_min: float = 2.0
    arrow_width_max: float = 4.0
    boundary_padding: float = 30.0
    min_dist_factor: float = 2.0
    intersection_factor: float = 1.2
    hit_ratio: float = 0.5

    def __post_init__(self):
        for name in ("size", "downsample", "patch"):
            check_positive_int(getattr(self, name), name)
        if self.size % self.patch:
            raise ValueError(f"size must be a multiple of patch ({self.patch}), got {self.size}")
        window = self.canvas - 2 * self.boundary_padding - 2 * self.min_dist_factor * self.max_radius
        if window < 0:
            raise ValueError(f"size: a {self.size} px image (canvas {self.canvas} px) is too small "
                             f"for circles of radius {self.max_radius} at "
                             f"{self.min_dist_factor} radii from the arrow")

    @property
    def canvas(self) -> int:
        """Side of the canvas the scene is drawn on."""
        return self.size * self.downsample

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.size // self.patch


class Scene(NamedTuple):
    """One sample's geometry in canvas pixels (x right, y down; angle in radians)."""

    arrow_x: float
    arrow_y: float
    angle: float
    circle_x: float
    circle_y: float
    radius: float
    arrow_length: int
    arrow_width: int
    hit: bool


def sample_scene(config: APEConfig, rng: np.random.Generator) -> Scene:
    """Draws one scene (the authors' order of random draws: label, length, width, positions)."""
    hit = bool(rng.uniform(0, 1) < config.hit_ratio)
    arrow_length = int(rng.uniform(config.arrow_length_min, config.arrow_length_max))
    arrow_width = int(rng.uniform(config.arrow_width_min, config.arrow_width_max))

    side = config.canvas - 2 * config.boundary_padding
    ax, ay = side * rng.random(), side * rng.random()
    r = config.min_radius + (config.max_radius - config.min_radius) * rng.random()
    offset = config.min_dist_factor * r
    # The circle sits in a window that starts `offset` after the arrow, wrapping around.
    cx = (ax + offset + (side - 2 * offset) * rng.random()) % side
    cy = (ay + offset + (side - 2 * offset) * rng.random()) % side

    dx, dy = cx - ax, cy - ay
    reach = r / config.intersection_factor if hit else r * config.intersection_factor
    # Rays within half_cone of the centre's direction pass closer than `reach`.
    half_cone = math.asin(min(1.0, reach / math.hypot(dx, dy)))
    towards = math.atan2(dy, dx)
    if hit:
        angle = towards - half_cone + 2 * half_cone * rng.random()
    else:
        angle = towards + half_cone + (2 * math.pi - 2 * half_cone) * rng.random()
    pad = config.boundary_padding
    return Scene(ax + pad, ay + pad, angle, cx + pad, cy + pad, r, arrow_length, arrow_width, hit)


def scene_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of the set with seed ``seed``."""
    return int(np.random.default_rng(seed).integers(1 << 62)) + index


def ray_hits_circle(scene: Scene) -> bool:
    """Whether the ray from the arrow's centre along its direction meets the circle (the
    geometric definition of the label, independent of how the scene was sampled)."""
    ux, uy = math.cos(scene.angle), math.sin(scene.angle)
    dx, dy = scene.circle_x - scene.arrow_x, scene.circle_y - scene.arrow_y
    along = dx * ux + dy * uy
    closest = dx * dx + dy * dy - along * along  # squared distance of the centre from the line
    inside = dx * dx + dy * dy <= scene.radius ** 2
    return inside or (along > 0 and closest <= scene.radius ** 2)


#: Labels of a scene: the task's (``"hit"``) and two that isolate a part of it, to find which
#: part a model that stays at chance fails to learn: where the circle lies relative to the arrow
#: (positions only), and which way the arrow points (its drawing only).
SCENE_LABELS = {
    "hit": lambda scene: scene.hit,
    "circle-right": lambda scene: scene.circle_x > scene.arrow_x,
    "points-right": lambda scene: math.cos(scene.angle) > 0,
}


def relabel(dataset: "APEDataset", label: str) -> "APEDataset":
    """``dataset`` with every sample's label replaced by ``SCENE_LABELS[label]`` of its scene
    (in place; returns it)."""
    check_one_of(label, "label", SCENE_LABELS)
    dataset.labels = torch.tensor([SCENE_LABELS[label](scene) for scene in dataset.scenes],
                                  dtype=torch.long)
    return dataset


def arrow_strokes(scene: Scene) -> list:
    """The three segments ``(x0, y0, x1, y1)`` of the arrow: shaft, then the two head strokes
    (the authors' construction: half-length ``L // 2``, head strokes ``L // 2.5`` at +-0.5 rad)."""
    half, head = scene.arrow_length // 2, scene.arrow_length // 2.5
    ux, uy = math.cos(scene.angle), math.sin(scene.angle)
    tip = (scene.arrow_x + half * ux, scene.arrow_y + half * uy)
    strokes = [(scene.arrow_x - half * ux, scene.arrow_y - half * uy, *tip)]
    for turn in (-0.5, 0.5):
        strokes.append((tip[0] - head * math.cos(scene.angle + turn),
                        tip[1] - head * math.sin(scene.angle + turn), *tip))
    return strokes


def render_scene(scene: Scene, config: APEConfig) -> np.ndarray:
    """The image of ``scene``: ``[size, size]`` uint8 grey levels, 255 = white background."""
    canvas = Image.new("L", (config.canvas, config.canvas), 255)
    draw = ImageDraw.Draw(canvas)
    for stroke in arrow_strokes(scene):
        draw.line(stroke, fill=0, width=scene.arrow_width)
    r = scene.radius
    cx, cy = scene.circle_x, scene.circle_y
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=0)
    if config.downsample > 1:
        canvas = canvas.resize((config.size, config.size), Image.BOX)
    return np.asarray(canvas)


def generate(config: APEConfig, seed: int, num_samples: int, start: int = 0):
    """Samples ``start .. start + num_samples - 1`` of the set with seed ``seed``: images
    ``[n, size, size]`` uint8, labels ``[n]`` long and the scenes."""
    base = scene_seed(seed, 0)
    scenes = [sample_scene(config, np.random.default_rng(base + i))
              for i in range(start, start + num_samples)]
    images = np.stack([render_scene(scene, config) for scene in scenes]) if scenes else \
        np.zeros((0, config.size, config.size), np.uint8)
    labels = torch.tensor([scene.hit for scene in scenes], dtype=torch.long)
    return torch.from_numpy(images), labels, scenes


def patchify(images: Tensor, patch: int) -> Tensor:
    """``[n, S, S]`` images -> ``[n, (S / patch)^2, patch^2]`` patches, row-major."""
    n, side = images.size(0), images.size(-1)
    grid = side // patch
    return (images.view(n, grid, patch, grid, patch).permute(0, 1, 3, 2, 4)
            .reshape(n, grid * grid, patch * patch))


@lru_cache(maxsize=8)
def grid_graph(height: int, width: int) -> tuple:
    """``edge_index`` of the grid DAG (every patch to its right and lower neighbour) and
    ``pos`` ``[height * width, 2]`` (row, col), node ``r * width + c``."""
    rows, cols = corner_coordinates(height, width, "top-left")
    return grid_edge_index(height, width, "top-left"), torch.stack([rows, cols], dim=1)


class APEDataset(Dataset):
    """APE images of one size as patch-grid graphs, rendered once and kept as uint8.

    ``self[i]`` is ``Data(x=[P^2, patch^2], edge_index=[2, 2 P (P - 1)], pos=[P^2, 2], y=[1])``
    with ``P = size / patch``; :attr:`images` and :attr:`scenes` keep the pictures and their
    geometry (``scenes[i]`` regenerates sample ``i``).

    Args:
        config: the generator's settings (size, downsample, patch, ...).
        seeds: ``{split: (seed, num_samples)}``; the samples of the splits are stored one
            after the other, in the order given, and :attr:`split_index` maps each split to
            its positions.
    """

    def __init__(self, config: APEConfig, seeds: Dict[str, tuple], transform=None):
        super().__init__(None, transform)
        self.config = config
        images, labels, self.scenes, self.split_index, start = [], [], [], {}, 0
        for split, (seed, count) in seeds.items():
            part = generate(config, seed, count)
            images.append(part[0])
            labels.append(part[1])
            self.scenes += part[2]
            self.split_index[split] = torch.arange(start, start + count)
            start += count
        self.images, self.labels = torch.cat(images), torch.cat(labels)
        self._edge_index, self._pos = grid_graph(config.grid, config.grid)

    def len(self) -> int:
        return self.images.size(0)

    def get(self, idx: int) -> Data:
        ink = 1.0 - self.images[idx:idx + 1].float() / 255.0
        return Data(x=patchify(ink, self.config.patch)[0], edge_index=self._edge_index,
                    pos=self._pos, y=self.labels[idx:idx + 1])

    @property
    def num_node_features(self) -> int:
        return self.config.patch ** 2

    @property
    def num_edge_features(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(size={self.config.size}, {len(self)})"


class APEBenchmark(BenchmarkDataset):
    """The ``ape-<size>`` benchmark: train / valid / test at ``size`` and, through
    :meth:`extrapolation`, the same task on larger images (objects keep their pixel size)."""

    def __init__(self, dataset: APEDataset, seed: int, num_extrapolation: int):
        super().__init__(f"{APE_PREFIX}{dataset.config.size}", dataset,
                         task_type="multiclass classification", num_tasks=2, metric="acc",
                         features="onehot", splits=[dict(dataset.split_index)], orientation="given")
        self.config, self.seed, self.num_extrapolation = dataset.config, seed, num_extrapolation

    def extrapolation(self, size: Optional[int] = None, split: str = "test",
                      num_samples: Optional[int] = None) -> APEDataset:
        """``num_samples`` (default: as many as the constructor's ``num_extrapolation``) images
        of side ``size`` (default: twice the training size) from the extrapolation seed of
        ``split`` (``"valid"`` or ``"test"``), with this benchmark's downsample and patch."""
        if split not in EXTRAPOLATION_SEEDS:
            raise ValueError(f"split must be one of {tuple(EXTRAPOLATION_SEEDS)}, got {split!r}")
        size = 2 * self.config.size if size is None else size
        count = self.num_extrapolation if num_samples is None else num_samples
        config = replace(self.config, size=size)
        return APEDataset(config, {split: (EXTRAPOLATION_SEEDS[split], count)})


def load_ape(size: int = 64, root=None, *, seed: int = 42, num_train: int = 10000,
             num_valid: int = 1000, num_test: int = 2000, num_extrapolation: int = 2000,
             downsample: int = 3, patch: int = 8, transform=None) -> APEBenchmark:
    """The ``ape-<size>`` benchmark (generated in memory; ``root`` is unused: nothing is read).

    Training images come from ``seed`` (the authors' default, 42), validation and test from
    the authors' fixed seeds 100042 and 200042, so changing ``seed`` changes only the
    training set. Sizes default to a CPU scale (the paper: 100,000 / 5,120 / 10,240)."""
    del root
    config = APEConfig(size=size, downsample=downsample, patch=patch)
    for name, value in (("num_train", num_train), ("num_valid", num_valid), ("num_test", num_test),
                        ("num_extrapolation", num_extrapolation)):
        check_positive_int(value, name)
    if seed in SPLIT_SEEDS.values() or seed in EXTRAPOLATION_SEEDS.values():
        raise ValueError(f"seed must differ from the evaluation seeds, got {seed}")
    dataset = APEDataset(config, {"train": (seed, num_train), "valid": (SPLIT_SEEDS["valid"], num_valid),
                                  "test": (SPLIT_SEEDS["test"], num_test)}, transform=transform)
    return APEBenchmark(dataset, seed, num_extrapolation)


_SPEC = re.compile(r"(\d+)((?:-[pd]\d+)*)")


def parse_ape_spec(name: str) -> Optional[dict]:
    """``load_ape`` arguments from a name ``ape-<size>[-p<patch>][-d<downsample>]``, or ``None``
    for other names: ``"ape-192-p32-d1"`` -> ``{"size": 192, "patch": 32, "downsample": 1}``
    (the paper's 192 px scene undownsampled, in 6 x 6 patches of 32 px)."""
    if not name.startswith(APE_PREFIX):
        return None
    match = _SPEC.fullmatch(name[len(APE_PREFIX):])
    options = re.findall(r"-([pd])(\d+)", match.group(2)) if match else []
    keys = [key for key, _ in options]
    if not match or len(set(keys)) != len(keys):
        raise ValueError(f"name: expected {APE_PREFIX}<size>[-p<patch>][-d<downsample>] in px, "
                         f"e.g. 'ape-64' or 'ape-192-p32-d1', got {name!r}")
    spec = {"size": int(match.group(1))}
    spec.update({{"p": "patch", "d": "downsample"}[key]: int(value) for key, value in options})
    return spec
