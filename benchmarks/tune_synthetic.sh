#!/usr/bin/env bash
# Tuned vs untuned MaxBoxAccV2 on the synthetic set at a tiny CPU budget (wsol tune).
#
# For each method: `wsol train` with the default (reference) recipe's values, evaluated on
# the test split (untuned), then `wsol tune` (TRIALS random trials scored on the held-out
# selection images, then --final: the best configuration retrained and evaluated on test).
# Writes OUT/<method>/{untuned,tune}/ and prints one line per method; results/tune_synthetic.md
# records a run.
#
#   bash benchmarks/tune_synthetic.sh OUT [TRIALS] [METHODS]
#
# The set's size and the share of the training images held out to select (and to score
# the trials) come from the environment: TRAIN_PER_CLASS (8), TEST_PER_CLASS (4), HOLDOUT
# (0.25: 6 selection images with the defaults).
set -euo pipefail
OUT=${1:?output folder}
TRIALS=${2:-3}
METHODS=${3:-"cam has"}
PY=${PYTHON:-python}
mkdir -p "$OUT"
[ -f "$OUT/syn/train_test_split.txt" ] || $PY -m wsol -q make-synthetic --out "$OUT/syn" --classes 3 \
    --train-per-class "${TRAIN_PER_CLASS:-8}" --test-per-class "${TEST_PER_CLASS:-4}" >/dev/null
BASE=(--dataset synthetic --root "$OUT/syn" --backbone efficientnet_lite0 --weights pretrained
      --train-layers last:1 --epochs 2 --batch-size 8 --holdout "${HOLDOUT:-0.25}" --test-split test)
for m in $METHODS; do
    $PY -m wsol -q train "${BASE[@]}" --wsol-method "$m" --resume --out "$OUT/$m/untuned" >/dev/null
    $PY -m wsol -q tune "${BASE[@]}" --wsol-method "$m" --trials "$TRIALS" --final --out "$OUT/$m/tune" >/dev/null
    $PY - "$OUT/$m" "$m" <<'PY'
import sys, pandas as pd
d, m = sys.argv[1], sys.argv[2]
u = pd.read_csv(f"{d}/untuned/test/summary.csv").iloc[0]
t = pd.read_csv(f"{d}/tune/summary.csv").iloc[0]
tr = pd.read_csv(f"{d}/tune/trials.csv")
best = tr.loc[tr[tr.state == "COMPLETE"].value.idxmax()]
params = {k[7:]: best[k] for k in tr.columns if k.startswith("params_")}
print(f"{m}: untuned MaxBoxAccV2 {u.maxboxacc_v2:.2f} (top-1 {u.top1_cls:.2f}); tuned {t.maxboxacc_v2:.2f} "
      f"(top-1 {t.top1_cls:.2f}); best trial #{int(best.number)} of {int((tr.state == 'COMPLETE').sum())} "
      f"(selection score {best.value:.2f}): {params}")
PY
done
