"""Data loading (offline) and image input/output."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from verify import data
from verify.errors import InvalidInputError


@pytest.fixture
def no_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def test_bundled_split_is_fixed(no_keras_cache):
    a, b = data.load_mnist(), data.load_mnist("bundled")
    assert a.source == "bundled"
    assert a.x_train.shape == (8000, 28, 28) and a.x_test.shape == (2000, 28, 28)
    assert a.x_train.min() >= 0 and a.x_train.max() <= 1
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert set(np.unique(a.y_test)) == set(range(10))


def test_full_mnist_from_keras_cache(tmp_path, monkeypatch):
    cache = tmp_path / "datasets"
    cache.mkdir()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 30, dtype=np.uint8)
    np.savez(cache / "mnist.npz", x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y[20:])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    split = data.load_mnist()
    assert split.source == "full" and split.x_train.shape == (20, 28, 28)
    assert np.allclose(split.x_test * 255, x[20:])


def test_full_requested_but_absent(no_keras_cache):
    with pytest.raises(InvalidInputError, match="bundled"):
        data.load_mnist("full")


def test_png_round_trip(tmp_path):
    x, _ = data.test_digits(1)
    path = data.write_png(x[0], tmp_path / "d.png")
    back = data.read_image(path)
    assert back.shape == (28, 28)
    assert np.max(np.abs(back - x[0])) <= 0.5 / 255 + 1e-12


def test_rgb_is_converted_to_gray(tmp_path):
    rgb = np.zeros((28, 28, 3), dtype=np.uint8)
    rgb[5:10, 5:10] = 255
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    img = data.read_image(tmp_path / "rgb.png")
    assert img[7, 7] == pytest.approx(1.0) and img[0, 0] == 0


def test_wrong_size_is_an_error_unless_resize(tmp_path):
    Image.fromarray(np.zeros((32, 30), dtype=np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(InvalidInputError, match="resize"):
        data.read_image(tmp_path / "big.png")
    assert data.read_image(tmp_path / "big.png", resize=True).shape == (28, 28)


def test_jpeg_and_npy(tmp_path):
    x, _ = data.test_digits(1)
    Image.fromarray((x[0] * 255).astype(np.uint8)).save(tmp_path / "d.jpg")
    assert data.read_image(tmp_path / "d.jpg").shape == (28, 28)
    np.save(tmp_path / "f.npy", x[0].astype(np.float32))
    np.save(tmp_path / "u.npy", (x[0] * 255).astype(np.uint8).reshape(784))
    assert np.allclose(data.read_image(tmp_path / "f.npy"), x[0], atol=1e-6)
    assert np.allclose(data.read_image(tmp_path / "u.npy"), x[0], atol=1 / 255)


@pytest.mark.parametrize("content,suffix,match", [
    (b"not an image at all", ".png", "cannot read"),
    (b"garbage", ".npy", "cannot read"),
])
def test_unreadable_files(tmp_path, content, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=match):
        data.read_image(path)


def test_missing_file():
    with pytest.raises(InvalidInputError, match="not found"):
        data.read_image("/nonexistent/digit.png")


def test_npy_wrong_size_or_range(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(100))
    np.save(tmp_path / "b.npy", np.full(784, -3.0))
    with pytest.raises(InvalidInputError, match="784"):
        data.read_image(tmp_path / "a.npy")
    with pytest.raises(InvalidInputError, match="outside"):
        data.read_image(tmp_path / "b.npy")


def test_example_images_are_bundled_test_digits():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "examples" / "images"
    for d in range(10):
        assert data.read_image(root / f"digit-{d}.png").shape == (28, 28)
