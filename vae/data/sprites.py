"""`sprites`: a procedural, offline renderer of dSprites-style images with known factors.

The factor grid is exactly the one of dSprites (Matthey et al. 2017), 737,280 combinations:

    shape        3   0 square, 1 ellipse, 2 heart
    scale        6   np.linspace(0.5, 1.0, 6)
    orientation 40   np.linspace(0, 2*pi, 40) radians. As in dSprites the first and the last
                     value coincide (0 and 2*pi), so orientation indices 0 and 39 render the
                     very same image, and the grid really has 39 distinct angles.
    pos_x       32   object centre column 16 + i
    pos_y       32   object centre row 16 + j

Images are 64x64 with one channel, binary: float32 values in {0, 1}. The flat index of a
combination is row-major over the factors in the order above (pos_y varies fastest), like the
dSprites archive (which has a leading constant colour factor).

Geometry
--------
* Pixel (row r, column c) is evaluated at its centre, the integer coordinate (r, c). The object
  centre for position indices (pos_x=i, pos_y=j) is the pixel (row 16 + j, column 16 + i), so
  every shape is symmetric about a pixel centre and a step of one in `pos_x` (`pos_y`) is an exact
  one-pixel shift by columns (rows): the offsets dx = c - (16 + i), dy = r - (16 + j) are
  integers and the inside test depends on nothing else.
* Half-extent of the object is h = 8 * scale pixels (4 to 8). The largest rotated square
  (half-diagonal 8 * sqrt(2) ~ 11.3 px) therefore stays within columns/rows 4..59 for every
  position, so no object touches the frame's border rows and columns (0 and 63). Pixel counts
  grow strictly with scale for every shape and orientation except one case forced by the grid:
  the axis-aligned square covers the same 9 x 9 pixels at h = 4 and h = 4.8.
* Orientation is a counter-clockwise rotation by the angle as seen in the image. With image
  coordinates X = dx (right) and Y = -dy (up, since the row index grows downward), the object
  frame is u = cos(a) X + sin(a) Y, v = -sin(a) X + cos(a) Y (v points up at angle 0).
  cos/sin values within 1e-9 of 0 or +-1 are snapped to exactly 0 or +-1, so multiples of
  pi/2 (in particular 0 and 2*pi) are exact rotations.
* Inside tests, always with `<=` so that results are deterministic:
    square   max(|u|, |v|) <= h
    ellipse  u^2 + 4 v^2 <= h^2           (semi-axes h along u and h/2 along v: elongated
                                           horizontally at angle 0, like dSprites)
    heart    (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 with x = u k / h, y = v k / h + y0.
             The curve spans x in [-1.13903, 1.13903], y in [-1, 1.23666]; y0 = 0.11833 centres
             that box on the object centre and k = 1.13903 maps its larger half-side to h, so
             the heart fills the same [-h, h] box as the square. Its tip (y = -1) points down in
             the image at orientation 0; the two lobes are on top.

Rendering is vectorized: each of the 3 x 6 x 40 centred masks is evaluated once (broadcasting
[T, 1, 1] parameters against a pixel grid) and pasted at the requested centres with one scatter
per chunk of images. `draw` evaluates the same inside test directly for arbitrary real scale,
angle and centre, and gives identical images on the factor grid.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from vae.data.base import Dataset, DatasetInfo

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
IMAGE_SHAPE = (64, 64, 1)
SHAPE_NAMES = ("square", "ellipse", "heart")
NUM_COMBINATIONS = int(np.prod(FACTOR_SIZES))  # 737,280

SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITION_OFFSET = 16  # centre pixel coordinate of position index 0
POSITIONS = POSITION_OFFSET + np.arange(32)
BASE_HALF_EXTENT = 8.0  # half-extent in pixels at scale 1

SPLITS = ("train", "test")
RENDER_CHUNK = 4096  # images per scatter, bounds the temporary index arrays

# Bounding box of the heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0.
_HEART_X_MAX = 1.139028164686317
_HEART_Y_MIN = -1.0
_HEART_Y_MAX = 1.2366591700121614
_HEART_Y0 = (_HEART_Y_MAX + _HEART_Y_MIN) / 2.0
_HEART_K = max(_HEART_X_MAX, (_HEART_Y_MAX - _HEART_Y_MIN) / 2.0)

# Centred template window: radius that contains any object at the largest scale.
_WINDOW_RADIUS = int(math.ceil(BASE_HALF_EXTENT * math.sqrt(2.0))) + 1
assert POSITIONS[0] - _WINDOW_RADIUS >= 1 and POSITIONS[-1] + _WINDOW_RADIUS <= IMAGE_SHAPE[0] - 2

_SNAP = 1e-9


def _cos_sin(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of each angle (any shape), snapped to exactly 0 / +-1 within 1e-9.

    Uses the scalar libm (`math.cos`) once per distinct angle, so the values do not depend on
    how the array is laid out or vectorized."""
    angles = np.asarray(angles, dtype=np.float64)
    uniq, inverse = np.unique(angles, return_inverse=True)
    c = np.array([math.cos(a) for a in uniq], dtype=np.float64)
    s = np.array([math.sin(a) for a in uniq], dtype=np.float64)
    for v in (c, s):
        v[np.abs(v) < _SNAP] = 0.0
        v[np.abs(v - 1.0) < _SNAP] = 1.0
        v[np.abs(v + 1.0) < _SNAP] = -1.0
    inverse = inverse.reshape(angles.shape)
    return c[inverse], s[inverse]


def _inside(shape: int, h: np.ndarray, c: np.ndarray, s: np.ndarray,
            dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Inside test for one shape id. h, c, s: [N, 1, 1]; dx, dy: pixel offsets from the object
    centre broadcastable to [N, H, W] (columns right, rows down). Returns bool [N, H, W]."""
    x_img = dx
    y_img = -dy  # the image's up direction
    u = c * x_img + s * y_img
    v = c * y_img - s * x_img
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= h
    if shape == 1:
        return u * u + 4.0 * (v * v) <= h * h
    if shape == 2:
        x = u * (_HEART_K / h)
        y = v * (_HEART_K / h) + _HEART_Y0
        x2 = x * x
        r = x2 + y * y - 1.0
        return r * r * r - x2 * (y * y * y) <= 0.0
    raise ValueError(f"shape must be 0 (square), 1 (ellipse) or 2 (heart), got {shape}")


def _draw_offsets(shapes: np.ndarray, h: np.ndarray, angles: np.ndarray,
                  dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """shapes, h, angles: [N]; dx, dy: offsets broadcastable to [N, H, W]. Returns bool [N, H, W]."""
    n = shapes.shape[0]
    grid = np.broadcast_shapes(dx.shape, dy.shape)[1:]
    out = np.zeros((n,) + grid, dtype=bool)
    c, s = _cos_sin(angles)
    for k in range(len(SHAPE_NAMES)):
        sel = np.flatnonzero(shapes == k)
        if sel.size == 0:
            continue
        dxk = dx if dx.shape[0] == 1 else dx[sel]
        dyk = dy if dy.shape[0] == 1 else dy[sel]
        out[sel] = _inside(k, h[sel, None, None], c[sel, None, None], s[sel, None, None], dxk, dyk)
    return out


@functools.lru_cache(maxsize=1)
def _templates() -> np.ndarray:
    """bool [3, 6, 40, W, W] centred masks for every (shape, scale, orientation), W = 2R + 1."""
    shape_i, scale_i, orient_i = np.meshgrid(np.arange(3), np.arange(6), np.arange(40), indexing="ij")
    shape_i, scale_i, orient_i = shape_i.ravel(), scale_i.ravel(), orient_i.ravel()
    offs = np.arange(-_WINDOW_RADIUS, _WINDOW_RADIUS + 1, dtype=np.float64)
    masks = _draw_offsets(shape_i, BASE_HALF_EXTENT * SCALES[scale_i], ORIENTATIONS[orient_i],
                          offs[None, None, :], offs[None, :, None])
    masks = masks.reshape(3, 6, 40, 2 * _WINDOW_RADIUS + 1, 2 * _WINDOW_RADIUS + 1)
    masks.setflags(write=False)
    return masks


def draw(shape, scale, angle, center_x, center_y) -> np.ndarray:
    """Renders objects from actual (not index) values, for any angle, scale or centre.

    shape: [N] ints in {0, 1, 2}; scale: [N] real, half-extent 8 * scale pixels; angle: [N]
    radians, counter-clockwise in the image; center_x / center_y: [N] pixel column / row of the
    object centre (integers keep the shape symmetric about a pixel). Scalars broadcast.
    Objects are clipped by the frame. Returns [N, 64, 64, 1] float32 in {0, 1}; on the factor
    grid the result equals `Sprites().render`.
    """
    shape, scale, angle, cx, cy = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a))
                                                        for a in (shape, scale, angle, center_x, center_y)))
    if shape.ndim != 1:
        raise ValueError(f"draw takes scalars or 1-D arrays, got shape {shape.shape}")
    if not np.issubdtype(shape.dtype, np.integer) or shape.size and (shape.min() < 0 or shape.max() > 2):
        raise ValueError("shape must hold integers in 0..2 (0 square, 1 ellipse, 2 heart)")
    if np.any(~(np.asarray(scale, np.float64) > 0)):
        raise ValueError("scale must be positive")
    rows = np.arange(IMAGE_SHAPE[0], dtype=np.float64)
    cols = np.arange(IMAGE_SHAPE[1], dtype=np.float64)
    cx = np.asarray(cx, np.float64)[:, None, None]
    cy = np.asarray(cy, np.float64)[:, None, None]
    mask = _draw_offsets(shape, BASE_HALF_EXTENT * np.asarray(scale, np.float64), angle,
                         cols[None, None, :] - cx, rows[None, :, None] - cy)
    return mask.astype(np.float32)[..., None]


def _as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


class Sprites:
    """The dSprites factor grid and a renderer for it (see the module docstring for geometry)."""

    factor_names: tuple[str, ...] = FACTOR_NAMES
    factor_sizes: tuple[int, ...] = FACTOR_SIZES
    image_shape: tuple[int, int, int] = IMAGE_SHAPE
    shape_names: tuple[str, ...] = SHAPE_NAMES

    @property
    def num_factors(self) -> int:
        """Number of generative factors (5)."""
        return len(self.factor_sizes)

    @property
    def num_combinations(self) -> int:
        """Size of the full factor grid (737,280)."""
        return NUM_COMBINATIONS

    def factor_values(self) -> dict[str, np.ndarray]:
        """The value behind each index: shape ids [3], scale [6] in [0.5, 1], orientation [40] in
        radians (0 and 2*pi both present), pos_x / pos_y [32] centre pixel coordinates 16..47."""
        return {
            "shape": np.arange(3),
            "scale": SCALES.copy(),
            "orientation": ORIENTATIONS.copy(),
            "pos_x": POSITIONS.copy(),
            "pos_y": POSITIONS.copy(),
        }

    def validate_factors(self, factors) -> np.ndarray:
        """Checks factors [N, 5] of integer indices within range; returns them as int64.
        Raises ValueError naming the offending factor and its allowed range."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(f"factors must have shape [N, {self.num_factors}] with columns "
                             f"{', '.join(self.factor_names)}; got shape {factors.shape}")
        if not np.issubdtype(factors.dtype, np.integer):
            raise ValueError(f"factors must be integer indices into each factor's values, got dtype {factors.dtype}")
        factors = factors.astype(np.int64)
        if factors.shape[0]:
            for k, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes)):
                col = factors[:, k]
                lo, hi = int(col.min()), int(col.max())
                if lo < 0 or hi >= size:
                    bad = lo if lo < 0 else hi
                    raise ValueError(f"factor {name!r} (column {k}) must be in 0..{size - 1}, got {bad}")
        return factors

    def sample_factors(self, num: int, rng: np.random.Generator | int) -> np.ndarray:
        """[num, 5] int32, each column independently uniform over its index range."""
        if num < 0:
            raise ValueError(f"num must be >= 0, got {num}")
        rng = _as_rng(rng)
        cols = [rng.integers(0, size, size=num) for size in self.factor_sizes]
        return np.stack(cols, axis=1).astype(np.int32).reshape(num, self.num_factors)

    def sample_with_fixed_factor(self, num: int, factor_index: int | str,
                                 rng: np.random.Generator | int) -> np.ndarray:
        """[num, 5] int32 factors: column `factor_index` (int or name) holds one random value
        shared by all rows, every other column is uniform (as BetaVAE/FactorVAE metrics need)."""
        if isinstance(factor_index, str):
            if factor_index not in self.factor_names:
                raise ValueError(f"unknown factor {factor_index!r}; factors are {self.factor_names}")
            factor_index = self.factor_names.index(factor_index)
        if not 0 <= int(factor_index) < self.num_factors:
            raise ValueError(f"factor_index must be in 0..{self.num_factors - 1}, got {factor_index}")
        factor_index = int(factor_index)
        rng = _as_rng(rng)
        factors = self.sample_factors(num, rng)
        factors[:, factor_index] = rng.integers(0, self.factor_sizes[factor_index])
        return factors

    def render(self, factors: np.ndarray) -> np.ndarray:
        """factors: [N, 5] integer indices -> images [N, 64, 64, 1] float32 in {0, 1}.

        Works in chunks of RENDER_CHUNK images, so temporaries stay small whatever N is."""
        factors = self.validate_factors(factors)
        n = factors.shape[0]
        height, width, _ = self.image_shape
        images = np.zeros((n, height, width), dtype=np.float32)
        templates = _templates()
        r = _WINDOW_RADIUS
        offs = np.arange(-r, r + 1)
        window = offs[:, None] * width + offs[None, :]  # [W, W] flat offsets around a centre
        for start in range(0, n, RENDER_CHUNK):
            f = factors[start:start + RENDER_CHUNK]
            m = f.shape[0]
            masks = templates[f[:, 0], f[:, 1], f[:, 2]]  # [m, W, W]
            centres = (np.arange(m) * (height * width) + (POSITIONS[f[:, 4]] * width) + POSITIONS[f[:, 3]])
            flat = centres[:, None, None] + window[None]
            images[start:start + m].reshape(-1)[flat[masks]] = 1.0
        return images[..., None]

    def sample(self, num: int, rng: np.random.Generator | int) -> tuple[np.ndarray, np.ndarray]:
        """Random images [num, 64, 64, 1] float32 and their factors [num, 5] int32."""
        factors = self.sample_factors(num, rng)
        return self.render(factors), factors

    def factors_to_index(self, factors) -> np.ndarray:
        """factors [..., 5] -> flat indices [...] int64 into the full grid (row-major, pos_y fastest)."""
        factors = np.asarray(factors)
        lead = factors.shape[:-1] if factors.ndim else ()
        flat = self.validate_factors(factors.reshape(-1, factors.shape[-1]) if factors.ndim else factors)
        return np.ravel_multi_index(tuple(flat.T), self.factor_sizes).astype(np.int64).reshape(lead)

    def index_to_factors(self, index) -> np.ndarray:
        """flat indices [...] in 0..737,279 -> factors [..., 5] int32 (inverse of factors_to_index)."""
        index = np.asarray(index)
        if not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"index must be integers, got dtype {index.dtype}")
        if index.size and (index.min() < 0 or index.max() >= NUM_COMBINATIONS):
            raise ValueError(f"index must be in 0..{NUM_COMBINATIONS - 1}")
        return np.stack(np.unravel_index(index, self.factor_sizes), axis=-1).astype(np.int32)


TRAIN_SIZE = 20000   # the default training split; `train[:N]` may ask for more (up to the grid's size)


def _train_factors(num: int, seed: int) -> np.ndarray:
    """The first `num` factor draws of the training sequence: the default split's 20,000 from
    default_rng(seed) (as ever), then blocks of 20,000 from default_rng([seed, block]), so every
    longer split starts with the default one."""
    if num <= TRAIN_SIZE:
        return Sprites().sample_factors(num, np.random.default_rng(seed))
    blocks = [Sprites().sample_factors(TRAIN_SIZE, np.random.default_rng(seed))]
    blocks += [Sprites().sample_factors(TRAIN_SIZE, np.random.default_rng([seed, b]))
               for b in range(1, -(-num // TRAIN_SIZE))]
    return np.concatenate(blocks)[:num]


def load_sprites(split: str, num_train: int = TRAIN_SIZE, num_test: int = 2000, seed: int = 0) -> Dataset:
    """A fixed random sample of the factor grid, rendered.

    split: 'train' (num_train images; factors drawn with np.random.default_rng(seed), and beyond
    20,000 in further blocks, so a larger split begins with the default one; `data.train_split=
    'train[:200000]'` asks for 200,000, 16 KiB of memory each) or 'test' (num_test images,
    np.random.default_rng(seed + 1)). images: [N, 64, 64, 1] float32 in {0, 1}; labels: [N] int32,
    the shape factor; factors: [N, 5] int32.
    """
    if split not in SPLITS:
        raise ValueError(f"sprites has splits 'train' and 'test', not {split!r}")
    if not 0 < num_train <= NUM_COMBINATIONS:
        raise ValueError(f"sprites' training split holds 1 to {NUM_COMBINATIONS:,} images (the size of the "
                         f"factor grid), not {num_train}")
    sprites = Sprites()
    if split == "train":
        factors = _train_factors(int(num_train), seed)
    else:
        factors = sprites.sample_factors(int(num_test), np.random.default_rng(seed + 1))
    images = sprites.render(factors)
    info = DatasetInfo(
        name="sprites",
        image_shape=IMAGE_SHAPE,
        num_classes=len(SHAPE_NAMES),
        factor_names=FACTOR_NAMES,
        factor_sizes=FACTOR_SIZES,
        binary=True,
        values="binary",
        description=("Procedural dSprites-style 64x64 binary images (square, ellipse, heart) on the "
                     "dSprites factor grid: shape 3, scale 6, orientation 40, pos_x 32, pos_y 32; "
                     "labels are the shape."),
    )
    return Dataset(info=info, split=split, images=images, labels=factors[:, 0].copy(), factors=factors)
