"""PxAP cost per image next to the box metrics, one core.

Per 224x224 map, in ms (fastest of ``--repeats`` passes over all images; the machine may be
shared):

* ``pxap_update``: wsol's streaming PxAP/PIoU update (``PixelPREvaluator.process``: bin
  search + two bincounts) with the mask already in memory;
* ``pxap_reference``: the same histograms with ``numpy.histogram`` as wsolevaluation's
  ``MaskEvaluator.accumulate`` does (boolean indexing + two histograms);
* ``mask_load``: reading one instance PNG and one ignore PNG (400x300) and building the
  224x224 mask (``wsol.datasets.masks.load_gt_mask``);
* ``pointing``: the pointing game and the energy share of one image;
* ``box_localize``: the box metrics' per-image work (``localize_map``: quantize, fast sweep,
  best IoU per τ in both modes), for comparison.

At wsolevaluation's two threshold grids (cam_step 0.01 and 0.001). Maps: CAM-like (a few
Gaussians on a 14x14 grid, bicubic upsample + min-max normalize, as the protocol does).
Appends rows to ``results/pxap_cost.csv``: n_images, n_thresholds, the five timings, cpu,
date, command.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # before numba is imported

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wsol.datasets.base import MaskRef  # noqa: E402
from wsol.datasets.masks import FOREGROUND, load_gt_mask  # noqa: E402
from wsol.localize.image import localize_map  # noqa: E402
from wsol.localize.maps import postprocess, thresholds  # noqa: E402
from wsol.metrics.mask_accuracy import PixelPREvaluator  # noqa: E402
from wsol.metrics.pointing import boxes_region, energy_share, peak_point, pointing_hit  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
COLUMNS = ["n_images", "n_thresholds", "ms_pxap_update", "ms_pxap_reference", "ms_mask_load", "ms_pointing",
           "ms_box_localize", "cpu", "date", "command"]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cam_like(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:14, 0:14].astype(np.float32)
    m = np.zeros((14, 14), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx, s = rng.uniform(2, 12), rng.uniform(2, 12), rng.uniform(1, 4)
        m += rng.uniform(0.5, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    m += 0.05 * rng.standard_normal((14, 14)).astype(np.float32)
    return postprocess(m)


def reference_accumulate(edges, true_hist, false_hist, scoremap, gt_mask) -> None:
    true_hist += np.histogram(scoremap[gt_mask == 1], bins=edges)[0]
    false_hist += np.histogram(scoremap[gt_mask == 0], bins=edges)[0]


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(REPO, "results", "pxap_cost.csv"))
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    maps = [cam_like(rng) for _ in range(args.images)]
    tmp = tempfile.mkdtemp(prefix="pxap_cost_")
    refs, masks, boxes = [], [], []
    for i in range(args.images):
        inst = np.zeros((300, 400), np.uint8)
        x0, y0 = int(rng.integers(0, 200)), int(rng.integers(0, 150))
        cv2.ellipse(inst, (x0 + 100, y0 + 70), (90, 60), 0, 0, 360, 255, -1)
        ign = np.zeros((300, 400), np.uint8)
        ign[y0:y0 + 150, x0:x0 + 200] = 255
        p, q = os.path.join(tmp, f"m{i}.png"), os.path.join(tmp, f"i{i}.png")
        cv2.imwrite(p, inst)
        cv2.imwrite(q, ign)
        refs.append(MaskRef((p,), q))
        masks.append(load_gt_mask(refs[-1]))
        ys, xs = np.nonzero(masks[-1] == FOREGROUND)
        boxes.append(np.array([[xs.min(), ys.min(), xs.max(), ys.max()]]))
    localize_map(maps[0], boxes[0], thresholds(0.01), "fast")  # numba compile / cache load
    stamp = datetime.date.today().isoformat()
    rows = []
    for step in (0.01, 0.001):
        taus = thresholds(step)
        ev = PixelPREvaluator(taus)
        edges = ev.edges
        th, fh = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)

        def pxap():
            for m, g in zip(maps, masks):
                ev.process(m, g)

        def ref():
            for m, g in zip(maps, masks):
                reference_accumulate(edges, th, fh, m, g)

        def load():
            for r in refs:
                load_gt_mask(r)

        def point():
            for m, g, b in zip(maps, masks, boxes):
                pointing_hit(peak_point(m), g == FOREGROUND, 15)
                energy_share(m, boxes_region(b, m.shape))

        def box():
            for m, b in zip(maps, boxes):
                localize_map(m, b, taus, "fast")

        n = args.images
        ms = {k: 1000 * best_of(f, args.repeats) / n for k, f in
              (("pxap", pxap), ("ref", ref), ("load", load), ("point", point), ("box", box))}
        rows.append({"n_images": n, "n_thresholds": len(taus), "ms_pxap_update": round(ms["pxap"], 3),
                     "ms_pxap_reference": round(ms["ref"], 3), "ms_mask_load": round(ms["load"], 3),
                     "ms_pointing": round(ms["point"], 3), "ms_box_localize": round(ms["box"], 3),
                     "cpu": cpu_name(), "date": stamp,
                     "command": "python benchmarks/pxap_cost.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))})
        print(rows[-1])
    new = not os.path.isfile(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
