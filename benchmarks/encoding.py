"""Encoding benchmark: build time of the exact query and unstable ReLUs after each bound stage.

For each bundled model and region (full box, L∞ ε=0.05, at most k=10 changed pixels), over a
few test digits: the time to compute bounds per stage, the number of unstable ReLUs after
each stage (interval → symbolic → LP), and the time to build the min-card MIP with the array
API — beside, as a baseline in the same run, the time Pyomo takes to build a model of the
very same problem (one Python object per variable and constraint).

    python benchmarks/encoding.py [--digits 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, timed, write_results  # noqa: E402

from verify.backends.pyomo import PyomoBackend  # noqa: E402
from verify.data import test_digits  # noqa: E402
from verify.encodings.query import build_query  # noqa: E402
from verify.models import bundled_models, load_model  # noqa: E402
from verify.regions import Box, L0Ball, LinfBall  # noqa: E402

REGIONS = {"box": lambda c: Box(c), "linf 0.05": lambda c: LinfBall(c, 0.05),
           "k=10 pixels": lambda c: L0Ball(c, 10)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", type=int, default=5, help="test digits per model (default 5)")
    args = ap.parse_args()
    x, _ = test_digits(args.digits)
    pyomo = PyomoBackend("appsi_highs")
    rows, data = [], []
    for name in bundled_models():
        net = load_model(name).network
        for region_name, make in REGIONS.items():
            recs = []
            for image in x:
                q = build_query(net, image, norm="card", region=make(image.ravel()))
                _, pyomo_s = timed(pyomo.build, q.problem) if pyomo.available() else (None, float("nan"))
                recs.append({"build_s": q.build_time_s, "pyomo_build_s": pyomo_s,
                             "stages": q.bounds.report(), **q.problem.summary()})
            med = lambda key: statistics.median(r[key] for r in recs)  # noqa: E731
            unstable = [statistics.median(r["stages"][i]["unstable"] for r in recs) for i in range(3)]
            stage_ms = [1000 * statistics.median(r["stages"][i]["time_s"] for r in recs) for i in range(3)]
            relus = recs[0]["stages"][0]["relus"]
            rows.append([name, region_name, relus, *[f"{u:g}" for u in unstable],
                         " / ".join(f"{t:.1f}" for t in stage_ms), int(med("columns")),
                         int(med("integer_columns")), 1000 * med("build_s"),
                         1000 * med("pyomo_build_s"), med("pyomo_build_s") / med("build_s")])
            data.append({"model": name, "region": region_name, "records": recs})
    headers = ["model", "region", "ReLUs", "unstable: interval", "symbolic", "LP",
               "bound ms (int/sym/LP)", "columns", "integer", "build ms", "Pyomo build ms",
               "Pyomo / ours"]
    notes = ("Medians over the first {n} bundled test digits; min-card query, untargeted. "
             "\"build ms\": building the MIP (network encoding, property, objective) with the "
             "array API, after bounds. \"Pyomo build ms\": constructing a Pyomo model of the same "
             "problem (`PyomoBackend.build`), the baseline.").format(n=args.digits)
    write_results("encoding", "Encoding: build time and unstable ReLUs per bound stage",
                  "python benchmarks/encoding.py --digits " + str(args.digits),
                  markdown_table(headers, rows), data, notes)


if __name__ == "__main__":
    main()
