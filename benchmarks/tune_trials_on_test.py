"""Each trial of a finished ``wsol tune`` study evaluated on the test split: does the
selection score rank the configurations as the test set does?

    python benchmarks/tune_trials_on_test.py TUNE_OUT [--split test]

Runs ``wsol evaluate`` (CAM of the trial's ``last.pt``) for every complete trial of
``TUNE_OUT/trials.csv`` and prints, per trial, the selection score next to the test
MaxBoxAccV2, then Spearman's rank correlation of the two (pandas). Writes
``TUNE_OUT/trials_on_test.csv``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tune_out")
    ap.add_argument("--split", default="test")
    a = ap.parse_args()
    trials = pd.read_csv(os.path.join(a.tune_out, "trials.csv"))
    rows = []
    for _, t in trials[trials.state == "COMPLETE"].iterrows():
        d = t.user_attrs_out
        with open(os.path.join(d, "train_config.json")) as f:
            cfg = json.load(f)
        out = os.path.join(d, f"eval_{a.split}")
        if not os.path.exists(os.path.join(out, "summary.csv")):
            subprocess.run([sys.executable, "-m", "wsol", "-q", "evaluate", "--dataset", cfg["dataset"],
                            "--root", cfg["root"], "--split", a.split, "--backbone", cfg["backbone"],
                            "--weights", os.path.join(d, "last.pt"), "--out", out], check=True)
        s = pd.read_csv(os.path.join(out, "summary.csv")).iloc[0]
        rows.append({"trial": int(t.number), "selection": float(t.value), "test_maxboxacc_v2": float(s.maxboxacc_v2),
                     **{k[7:]: t[k] for k in trials.columns if k.startswith("params_")}})
    df = pd.DataFrame(rows)
    df.to_csv(os.path.join(a.tune_out, "trials_on_test.csv"), index=False)
    print(df.to_string(index=False))
    print(f"Spearman(selection, test) = {df.selection.corr(df.test_maxboxacc_v2, method='spearman'):.2f} "
          f"over {len(df)} trials")


if __name__ == "__main__":
    main()
