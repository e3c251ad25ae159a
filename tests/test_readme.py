"""The README's examples run as written.

Every ```sh block of README.md runs through bash with the real ``verify`` console script of
this environment first on PATH, and every ```python block runs as a script in a fresh
interpreter, each in a temporary working directory that holds links to the repository's
``examples/`` and ``benchmarks/`` (the README's paths are relative to the repository root;
whatever a command writes lands in the temporary directory). A block that cannot run here
(it creates a virtual environment or installs packages) is preceded in the README by the
marker ``<!-- readme-test: skip: REASON -->``; the test refuses a marker without a reason,
refuses more than :data:`MAX_SKIPPED` of them, and skips nothing else.

The examples themselves are chosen to answer in seconds (small models, digits that are quick
for them, explicit time limits), so the whole file runs in a few minutes on two cores.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP_MARKER = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<reason>[^>]*?)\s*-->\s*$")
#: At most this many README blocks may be marked as not runnable by the test.
MAX_SKIPPED = 1
#: Seconds one block may take before the test fails it.
BLOCK_TIMEOUT = 300


@dataclass
class Block:
    lang: str          # "sh" or "python"
    code: str
    line: int          # 1-based line of the opening fence
    skip: str | None   # the marker's reason, or None

    @property
    def id(self) -> str:
        return f"{self.lang}@line{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text`` whose language is ``sh`` or ``python``, with the skip
    marker that precedes it (on the line before the fence, blank lines allowed)."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        lang, start = fence.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            raise AssertionError(f"README.md line {start + 1}: code block never closed")
        if lang in ("sh", "python"):
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = SKIP_MARKER.match(lines[k].strip()) if k >= 0 else None
            blocks.append(Block(lang, "\n".join(lines[start + 1:j]) + "\n", start + 1,
                                marker.group("reason") if marker else None))
        i = j + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _console_script() -> Path:
    """The ``verify`` console script installed beside this interpreter (never a stray one on
    PATH): the README's commands must run through the real entry point."""
    script = Path(sys.executable).parent / "verify"
    if not script.is_file():
        pytest.fail(f"the verify console script is not installed beside {sys.executable}; "
                    "install the package (pip install -e '.[test]') to run the README's commands")
    return script


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch working directory that sees the repository's examples/ and benchmarks/."""
    for name in ("examples", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


def _run(argv: list[str], cwd: Path, block: Block) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{_console_script().parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("KERAS_BACKEND", "jax")
    env["MPLBACKEND"] = "Agg"
    try:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"README.md {block.id} did not finish within {BLOCK_TIMEOUT} s:\n{block.code}"
                    f"\n--- stderr so far ---\n{(e.stderr or b'')[-3000:]!r}")


def test_readme_has_runnable_examples():
    """The README has both kinds of examples, documents bench/report, and keeps the blocks the
    test cannot run few and explained."""
    langs = {b.lang for b in BLOCKS}
    assert langs == {"sh", "python"}, langs
    skipped = [b for b in BLOCKS if b.skip is not None]
    assert all(b.skip for b in skipped), "a skip marker needs a reason"
    assert len(skipped) <= MAX_SKIPPED, [b.id for b in skipped]
    shell = "".join(b.code for b in BLOCKS if b.lang == "sh" and b.skip is None)
    for command in ("verify bench ", "verify report ", "verify vnncomp ", "verify export "):
        assert re.search(rf"^{command}", shell, re.MULTILINE), f"README runs no `{command.strip()}`"
    # every property file the README names exists (the README once named a missing prop.vnnlib)
    names = re.findall(r"[\w./-]+\.vnnlib(?:\.gz)?\b", README.read_text(encoding="utf-8"))
    files = [n for n in names if not n.startswith("verify.")]       # verify.vnnlib: the module
    assert files and all((ROOT / f).is_file() for f in files), files


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.skip is None], ids=lambda b: b.id)
def test_readme_block_runs(block: Block, workdir: Path):
    if block.lang == "sh":
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    else:
        argv = [sys.executable, "-c", block.code]
    proc = _run(argv, workdir, block)
    assert proc.returncode == 0, (
        f"README.md {block.id} failed with exit code {proc.returncode}:\n{block.code}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-5000:]}")
    assert "Traceback" not in proc.stderr, proc.stderr[-5000:]
