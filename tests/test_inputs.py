"""Inputs are never misread and every number is validated (issue 16, findings 3, 4 and 5).

Images are scaled by their own bit depth, transparency is composited on black, float
arrays must lie in [0, 1] (or be given a ``scale``), ambiguous or broken arrays are errors
that name the value and the fix; numeric flags and API arguments are checked, naming the
flag, before any work; corrupt model files and empty VNN-LIB boxes get clear messages.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from verify import data
from verify.cli import main
from verify.errors import InvalidInputError, ModelLoadError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"
DIGIT = str(EXAMPLES / "digit-7.png")


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    """A real digit on the 8-bit grid (values k/255)."""
    return data.read_image(DIGIT)


@pytest.fixture(scope="module")
def twoclass():
    from verify.models import load_model

    return load_model("twoclass")


def _u8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- image files

@pytest.mark.parametrize("suffix,mode", [(".png", "I;16"), (".png", "I;16B"), (".tif", "I;16B")])
def test_16_bit_grayscale_is_scaled_by_its_bit_depth(tmp_path, digit, suffix, mode):
    """A 16-bit image holds the same digit as the 8-bit one, scaled by 65535 (x257), and is
    read as the same image, not as a 0/1 one."""
    sixteen = _u8(digit).astype(np.uint16) * 257
    path = tmp_path / f"d16{suffix}"
    Image.frombytes(mode, (28, 28), sixteen.astype(">u2" if mode.endswith("B") else "<u2")
                    .tobytes()).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I;16")                   # the file really is 16-bit
    Image.fromarray(_u8(digit)).save(tmp_path / "d8.png")
    eight = data.read_image(tmp_path / "d8.png")
    np.testing.assert_allclose(data.read_image(path), eight, atol=1e-12)
    assert 0 < np.count_nonzero((eight > 0) & (eight < 1))   # gray levels survive


def test_16_bit_intermediate_values_and_resize(tmp_path):
    values = np.zeros((28, 28), dtype=np.uint16)
    values[3, 4], values[5, 6] = 65535, 300           # 300: below 8-bit white, far from 0/1
    Image.fromarray(values).save(tmp_path / "a.png")
    img = data.read_image(tmp_path / "a.png")
    assert img[3, 4] == 1.0 and img[5, 6] == pytest.approx(300 / 65535)
    Image.fromarray(np.full((40, 30), 32768, dtype=np.uint16)).save(tmp_path / "big.png")
    np.testing.assert_allclose(data.read_image(tmp_path / "big.png", resize=True), 32768 / 65535,
                               rtol=1e-6)


def _rgba(alpha: int) -> Image.Image:
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., 3] = 0                                    # transparent background...
    rgba[:, :, :3] = 255                                # ...whose colour is white
    rgba[10:15, 10:15, 3] = alpha                       # a white square of opacity alpha
    return Image.fromarray(rgba, "RGBA")


def _palette_image() -> Image.Image:
    """Palette entry 0 is a transparent white (the background), entry 1 an opaque white."""
    index = np.zeros((28, 28), dtype=np.uint8)
    index[10:15, 10:15] = 1
    img = Image.fromarray(index, "P")
    img.putpalette([255, 255, 255, 255, 255, 255] + [0, 0, 0] * 254)
    return img


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_on_black_with_a_warning(tmp_path, mode):
    path = tmp_path / f"{mode}.png"
    if mode == "P":
        _palette_image().save(path, transparency=0)
    else:
        _rgba(128).convert(mode).save(path)
    with Image.open(path) as img:
        assert img.mode == mode
    with pytest.warns(data.ImageInputWarning, match="composited on black"):
        out = data.read_image(path)
    assert out[0, 0] == 0.0                              # transparent white is black
    expected = 1.0 if mode == "P" else 128 / 255         # opacity 128 of white: 128/255
    assert out[12, 12] == pytest.approx(expected, abs=1e-12)


def test_opaque_alpha_and_colour_modes_need_no_warning(tmp_path, digit, recwarn):
    Image.fromarray(_u8(digit)).convert("RGBA").save(tmp_path / "opaque.png")
    Image.fromarray(_u8(digit)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    np.testing.assert_allclose(data.read_image(tmp_path / "opaque.png"), digit, atol=1e-12)
    assert np.abs(data.read_image(tmp_path / "cmyk.jpg") - digit).max() < 0.1
    assert not [w for w in recwarn if issubclass(w.category, data.ImageInputWarning)]


def test_scale_does_not_apply_to_integer_images():
    with pytest.raises(InvalidInputError, match="own bit depth"):
        data.read_image(DIGIT, scale=255)


# ------------------------------------------------------------------------------ .npy arrays

def test_float_npy_above_one_is_an_error_naming_the_value(tmp_path, digit):
    x = digit.astype(np.float32)
    x[4, 5] = np.float32(1.0000001)                      # float round-off, not 0..255 data
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(InvalidInputError, match=r"1\.0000001 at index \(4, 5\)") as e:
        data.read_image(tmp_path / "x.npy")
    assert "np.clip" in str(e.value)
    np.save(tmp_path / "x255.npy", digit * 255)
    with pytest.raises(InvalidInputError, match="--scale 255"):
        data.read_image(tmp_path / "x255.npy")
    np.save(tmp_path / "neg.npy", digit - 0.5)
    with pytest.raises(InvalidInputError, match="outside"):
        data.read_image(tmp_path / "neg.npy")


def test_scale_255_reads_0_to_255_float_data(tmp_path, digit):
    np.save(tmp_path / "x255.npy", (digit * 255).astype(np.float32))
    np.testing.assert_allclose(data.read_image(tmp_path / "x255.npy", scale=255), digit, atol=1e-6)
    with pytest.raises(InvalidInputError, match="scale must be a finite number > 0"):
        data.read_image(tmp_path / "x255.npy", scale=0)
    with pytest.raises(InvalidInputError, match=r"outside \[0, 100\]"):
        data.read_image(tmp_path / "x255.npy", scale=100)


def test_cli_scale_255(capfd, tmp_path, digit):
    import json

    np.save(tmp_path / "x01.npy", digit.astype(np.float32))
    np.save(tmp_path / "x255.npy", (digit * 255).astype(np.float32))
    outputs = []
    for name, extra in (("x01.npy", []), ("x255.npy", ["--scale", "255"])):
        code = main(["predict", str(tmp_path / name), "--model", "twoclass", "--json", *extra])
        out, err = capfd.readouterr()
        assert code == 0, err
        outputs.append(json.loads(out))
    assert outputs[0]["label"] == outputs[1]["label"]
    np.testing.assert_allclose(outputs[0]["logits"], outputs[1]["logits"], atol=1e-4)
    assert main(["predict", str(tmp_path / "x255.npy"), "--model", "twoclass"]) == 1
    assert "--scale 255" in capfd.readouterr().err


def test_integer_npy_rules(tmp_path, digit):
    np.save(tmp_path / "u8.npy", _u8(digit))
    np.testing.assert_allclose(data.read_image(tmp_path / "u8.npy"), digit, atol=1e-12)
    np.save(tmp_path / "i64.npy", _u8(digit).astype(np.int64).ravel())
    np.testing.assert_allclose(data.read_image(tmp_path / "i64.npy"), digit, atol=1e-12)
    binary = (digit > 0.5).astype(np.int64)
    np.save(tmp_path / "bin.npy", binary)
    with pytest.raises(InvalidInputError, match="only 0s and 1s.*scale=1"):
        data.read_image(tmp_path / "bin.npy")
    np.testing.assert_array_equal(data.read_image(tmp_path / "bin.npy", scale=1), binary)
    np.save(tmp_path / "u16.npy", _u8(digit).astype(np.uint16) * 257)
    with pytest.raises(InvalidInputError, match="outside 0..255.*scale=65535"):
        data.read_image(tmp_path / "u16.npy")
    np.testing.assert_allclose(data.read_image(tmp_path / "u16.npy", scale=65535), digit,
                               atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(tmp_path, digit, bad):
    x = digit.copy()
    x[2, 3] = bad
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(InvalidInputError, match=rf"non-finite value: {bad} at index \(2, 3\)"):
        data.read_image(tmp_path / "x.npy")


def test_npz_named_npy_is_a_clear_error(tmp_path, digit, capfd):
    with open(tmp_path / "x.npy", "wb") as f:
        np.savez(f, image=digit, label=7)
    with pytest.raises(InvalidInputError, match=r"\.npz archive \(arrays: image, label\)"):
        data.read_image(tmp_path / "x.npy")
    assert main(["predict", str(tmp_path / "x.npy")]) == 1
    err = capfd.readouterr().err
    assert err.startswith("verify: error:") and err.count("\n") == 1 and ".npz" in err


# ------------------------------------------------------------------------------ model files

def _corrupt_models(tmp_path: Path, bundled_path: Path) -> dict[str, Path]:
    whole = bundled_path.read_bytes()
    files = {"truncated.keras": whole[: len(whole) // 2], "garbage.keras": b"not a zip at all",
             "truncated.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 40}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in files}


def test_corrupt_model_files_give_the_real_reason(tmp_path, twoclass):
    from verify.models import load_model

    for name, path in _corrupt_models(tmp_path, twoclass.path).items():
        with pytest.raises(ModelLoadError) as e:
            load_model(path)
        message = str(e.value)
        assert "not found" not in message.lower(), message
        assert message.startswith(f"cannot load {path}")
        if name.endswith(".keras"):
            assert "not a zip file" in message.lower() and "corrupt or truncated" in message
    # a zip that is no Keras model: Keras's own reason
    with zipfile.ZipFile(tmp_path / "nozip.keras", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model(tmp_path / "nozip.keras")


def test_unimportable_keras_backend_is_one_line(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-m", "verify.cli", "info", "twoclass"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "set KERAS_BACKEND=jax" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- numeric flags

# (argv before the flag, flag, bad value); the image path does not exist, so only a check
# made while parsing (exit 2) can pass: a run that starts fails with exit 1 instead.
MISSING = "/nonexistent/digit.png"
BAD_FLAGS = [
    *[(["min-adv-card", MISSING], "--margin", v) for v in ("-1", "nan", "inf", "x")],
    *[(["min-adv-l1", MISSING], "--time-limit", v) for v in ("0", "-5", "nan", "inf")],
    *[(["min-adv-linf", MISSING], "--threads", v) for v in ("0", "-4", "1.5", "nan")],
    (["min-adv-card", MISSING], "--pixel-levels", "1"),
    (["min-adv-card", MISSING], "--pixel-levels", "2.5"),
    *[(["certify", MISSING], "--eps", v) for v in ("nan", "-0.1", "inf")],
    *[(["certify", MISSING], "--pixels", v) for v in ("-1", "2.5")],
    (["certify", MISSING], "--time-limit", "0"),
    (["certify", MISSING], "--threads", "0"),
    (["encode", "twoclass", MISSING, "--task", "certify", "--out", "q.mps"], "--margin", "-1"),
    (["encode", "twoclass", MISSING, "--task", "certify", "--out", "q.mps"], "--eps", "nan"),
    (["encode", "twoclass", MISSING, "--task", "certify", "--out", "q.mps"], "--pixels", "-2"),
    (["explain", MISSING], "--eps", "nan"),
    (["explain", MISSING], "--time-limit", "nan"),
    (["explain", MISSING], "--threads", "0"),
    (["attack", MISSING], "--eps", "nan"),
    (["attack", MISSING], "--seed", "-1"),
    (["compare", MISSING], "--time-limit", "0"),
    (["compare", MISSING], "--seed", "1.5"),
    (["vnncomp", "/nonexistent"], "--threads", "0"),
    (["vnncomp", "/nonexistent"], "--timeout-cap", "-1"),
    (["export", "twoclass", "/nonexistent/x.onnx"], "--opset", "5"),
    (["bench", "/nonexistent.toml"], "--workers", "0"),
    *[(["predict", MISSING], "--scale", v) for v in ("0", "-255", "nan")],
    (["min-adv-card", MISSING], "--scale", "inf"),
]


@pytest.mark.parametrize("argv,flag,value", BAD_FLAGS,
                         ids=[f"{a[0]} {f} {v}" for a, f, v in BAD_FLAGS])
def test_every_numeric_flag_is_validated_while_parsing(capfd, argv, flag, value):
    with pytest.raises(SystemExit) as e:
        main([*argv, f"{flag}={value}"])
    err = capfd.readouterr().err
    assert e.value.code == 2, err
    last = err.strip().splitlines()[-1]
    assert f"error: argument {flag}" in last and repr(value) in last, last
    assert ": must be a " in last, last


def test_good_flag_values_still_parse():
    from verify.cli import build_parser

    args = build_parser().parse_args(
        ["min-adv-card", "x.png", "--margin", "0", "--time-limit", "1e-3", "--threads", "2",
         "--pixel-levels", "256", "--scale", "255"])
    assert (args.margin, args.time_limit, args.threads, args.pixel_levels, args.scale) == \
        (0.0, 1e-3, 2, 256, 255.0)
    assert isinstance(args.threads, int) and isinstance(args.pixel_levels, int)
    args = build_parser().parse_args(["certify", "x.png", "--pixels", "1e1", "--eps", "0.5"])
    assert args.pixels == 10 and isinstance(args.pixels, int) and args.eps == 0.5


def test_bad_flag_in_a_subprocess_exits_2_with_one_error_line():
    proc = subprocess.run([sys.executable, "-m", "verify.cli", "min-adv-card", DIGIT,
                           "--margin", "nan"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == ["verify min-adv-card: error: argument --margin: must be a finite number "
                      "≥ 0, not 'nan'"], proc.stderr


def test_linf_eps_above_one_is_a_one_line_error(capfd):
    code = main(["certify", DIGIT, "--model", "twoclass", "--eps", "8"])
    err = capfd.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "eps must be ≤ 1 in the linf norm, not 8.0" in err and "8/255" in err


# ------------------------------------------------------------------------------ Python API

def test_api_arguments_are_validated_before_any_work(twoclass, digit):
    import verify
    from verify.attacks.api import attack
    from verify.tasks.compare import compare

    from functools import partial

    adv = partial(verify.min_adversarial, twoclass, digit)
    cert = partial(verify.certify, twoclass, digit)
    expl = partial(verify.explain, twoclass, digit)
    pgd = partial(attack, twoclass, digit, "pgd", "linf")
    cases = [
        (partial(adv, margin=-1), "margin must be a finite number ≥ 0, not -1"),
        (partial(adv, margin=math.nan), "margin .* not nan"),
        (partial(adv, time_limit=0), "time_limit must be a finite number > 0, not 0"),
        (partial(adv, time_limit=-5), "time_limit .* not -5"),
        (partial(adv, threads=0), "threads must be a whole number ≥ 1"),
        (partial(adv, threads=2.5), "threads must be a whole number"),
        (partial(adv, pixel_levels=1), "pixel_levels"),
        (partial(cert, eps=math.nan), "eps must be a finite number ≥ 0, not nan"),
        (partial(cert, eps=-0.1), "eps .* not -0.1"),
        (partial(cert, eps=2), "eps must be ≤ 1 in the linf norm"),
        (partial(cert, pixels=-1), "pixels must be a whole number ≥ 0"),
        (partial(cert, eps=0.1, time_limit=math.inf), "time_limit .* not inf"),
        (partial(cert, eps=0.1, threads=0), "threads"),
        (partial(expl, time_limit=math.nan), "time_limit .* not nan"),
        (partial(expl, eps=math.inf), "eps .* not inf"),
        (partial(expl, eps=1.5), "eps must be ≤ 1"),
        (partial(pgd, eps=0.1, seed=-1), "seed must be a whole number ≥ 0"),
        (partial(pgd, eps=math.nan), "eps .* not nan"),
        (partial(pgd, eps=0.1, steps=0), "steps must be a whole number ≥ 1"),
        (partial(compare, twoclass, digit, time_limit=0), "time_limit"),
        (partial(verify.certify_vnnlib, twoclass, "unused.vnnlib", time_limit=-1),
         "time_limit .* not -1"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            call()
    # the l1 / l2 radii are not limited to 1 (a Euclidean radius of 2 is meaningful)
    from verify.validate import check_eps

    assert check_eps(2, "l2") == check_eps(2, "l1") == 2.0 and check_eps(1, "linf") == 1.0


# -------------------------------------------------------------------------------- VNN-LIB

_DECLS = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"


def test_vnnlib_empty_input_box_is_an_error_naming_the_bounds():
    from verify.vnnlib import parse_vnnlib_text

    text = _DECLS + "(assert (<= 0 X_0 1))\n(assert (>= X_1 0.7))\n(assert (<= X_1 0.2))\n" \
                    "(assert (<= Y_0 0))\n"
    with pytest.raises(InvalidInputError, match=r"line 2, .*input box is empty: "
                                                r"X_1: lower 0\.7 > upper 0\.2"):
        parse_vnnlib_text(text)
    # an empty term beside a non-empty one comes from the DNF expansion: dropped, as before
    text = _DECLS + ("(assert (or (and (<= 1 X_0 0) (<= 0 X_1 1))\n"
                     "            (and (<= 0 X_0 1) (<= 0 X_1 1))))\n"
                     "(assert (<= Y_0 0))\n")
    (case,) = parse_vnnlib_text(text).cases
    np.testing.assert_array_equal(case.lower, [0, 0])


@pytest.mark.parametrize("atom,match", [
    ("(<= (* 1e300 1e300 Y_0) 1)", "float64 range"),
    ("(<= (- (* 1e300 1e300) (* 1e300 1e300)) Y_0)", "float64 range"),
    ("(<= (* 1e-320 X_0) 1)", r"bound on X_0 .* outside the float64 range"),
])
def test_vnnlib_overflowing_arithmetic_is_an_error(atom, match):
    from verify.vnnlib import parse_vnnlib_text

    text = _DECLS + f"(assert (<= 0 X_0 1))\n(assert (<= 0 X_1 1))\n(assert {atom})\n"
    with pytest.raises(InvalidInputError, match=match):
        parse_vnnlib_text(text)


def test_cli_vnnlib_empty_box(capfd, tmp_path):
    from verify.vnnlib import write_robustness_property

    path = tmp_path / "p.vnnlib"
    write_robustness_property(path, np.full(784, 0.5), 0, 0.1, 10)
    text = path.read_text().replace("(assert (>= X_0 0.4", "(assert (>= X_0 0.9", 1)
    assert text != path.read_text()
    path.write_text(text)
    code = main(["certify", "--model", "multiclass", "--vnnlib", str(path)])
    out, err = capfd.readouterr()
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "input box is empty" in err and "X_0: lower 0.9" in err
