"""VNN-LIB 2.0 versions of the bundled benchmark properties, and a check that both versions agree.

VNN-COMP ships its benchmarks in VNN-LIB 1.0 and 2.0. This script writes the 2.0 form of
every 1.0 benchmark folder here (``vnncomp/mlp-256x2``, ``engine/*`` and ``resnet-small``)
into ``FOLDER/2.0/`` (gzip-compressed properties and an ``instances.csv`` pointing at the
folder's ONNX model), with :func:`verify.vnncomp.convert_benchmark_v2`, and checks that each 2.0 file parses to
exactly the normal form of its 1.0 original (same boxes, same output rows)::

    python benchmarks/vnnlib2.py              # (re)write every FOLDER/2.0/ and check them
    python benchmarks/vnnlib2.py --check      # only check the files already there
    verify vnncomp benchmarks/vnncomp/mlp-256x2/2.0 --out /tmp/r2.csv   # run the 2.0 form

The generated files are deterministic (gzip without a timestamp), so a rerun changes nothing.
``tests/test_vnnlib2.py`` checks that the 2.0 versions give the same verdicts as 1.0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HERE = Path(__file__).resolve().parent
#: The 1.0 benchmark folders that get a 2.0 form.
FOLDERS = [HERE / "vnncomp" / "mlp-256x2", *sorted(p for p in (HERE / "engine").iterdir()
                                                   if (p / "instances.csv").is_file()),
           HERE / "resnet-small"]


def same_normal_form(a, b) -> bool:
    """Two parsed properties state the same thing: equal cases (boxes, rows, in order)."""
    import numpy as np

    if (a.num_inputs, a.num_outputs, len(a.cases)) != (b.num_inputs, b.num_outputs, len(b.cases)):
        return False
    for ca, cb in zip(a.cases, b.cases):
        if not (np.array_equal(ca.lower, cb.lower) and np.array_equal(ca.upper, cb.upper)
                and len(ca.disjuncts) == len(cb.disjuncts)):
            return False
        for (A1, b1), (A2, b2) in zip(ca.disjuncts, cb.disjuncts):
            if not (np.array_equal(A1, A2) and np.array_equal(b1, b2)):
                return False
    return True


def check(folder: Path) -> list[str]:
    """Problems found comparing ``folder``'s 1.0 properties with ``folder/2.0``'s."""
    from verify.vnncomp import read_instances
    from verify.vnnlib import parse_vnnlib

    problems = []
    old = read_instances(folder)
    new = read_instances(folder / "2.0")
    if len(old) != len(new):
        return [f"{folder}: {len(old)} instances in 1.0, {len(new)} in 2.0"]
    for a, b in zip(old, new):
        p1, p2 = parse_vnnlib(folder / a.vnnlib), parse_vnnlib(folder / "2.0" / b.vnnlib)
        if p2.version != "2.0" or not same_normal_form(p1, p2):
            problems.append(f"{folder / '2.0' / b.vnnlib}: not the same property as {a.vnnlib}")
        same_model = (folder / "2.0" / b.onnx).resolve() == (folder / a.onnx).resolve()
        if not same_model or a.timeout != b.timeout:
            problems.append(f"{folder / '2.0'}/instances.csv: {b.onnx},{b.timeout:g} differs "
                            f"from {a.onnx},{a.timeout:g}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the existing 2.0 files")
    args = parser.parse_args(argv)
    from verify.vnncomp import convert_benchmark_v2

    problems = []
    for folder in FOLDERS:
        if not args.check:
            convert_benchmark_v2(folder)
        found = check(folder)
        problems += found
        print(f"{folder.relative_to(HERE)}/2.0: {'OK' if not found else f'{len(found)} problem(s)'}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
