#!/usr/bin/env python
"""Open a wsol report.html in headless Chromium and check that it renders.

Checks: (1) every <img> src is a data URI that decodes as PNG (Pillow); (2) in the browser,
every image is complete with naturalWidth > 0 after load (a copy of the page with a tiny
inline script is rendered with --dump-dom); (3) a screenshot is taken and is not blank.

Without --report it builds a demo first: a synthetic CUB-layout set, `wsol evaluate` with
resnet18 (random weights, --save-cams), `wsol report`.

    python benchmarks/check_report_browser.py --screenshot results/report_screenshot.png
    python benchmarks/check_report_browser.py --report runs/r18/report.html --screenshot /tmp/r.png

Needs Debian's chromium (`apt-get install -y chromium`). Exit code 0 when all checks pass.
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars"]
IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]*)"', re.S)
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-imgs-ok', ok + '/' + imgs.length);
});
</script>"""


def check_sources(html: str) -> List[str]:
    """Problems with the <img> sources (empty list when all decode as PNG)."""
    problems = []
    srcs = IMG_SRC.findall(html)
    if not srcs:
        problems.append("no <img> in the page")
    for k, src in enumerate(srcs):
        prefix = "data:image/png;base64,"
        if not src.startswith(prefix):
            problems.append(f"img {k}: src is not a PNG data URI ({src[:40]!r})")
            continue
        try:
            im = Image.open(io.BytesIO(base64.b64decode(src[len(prefix):])))
            im.load()
            if im.format != "PNG" or im.width == 0:
                problems.append(f"img {k}: not a PNG")
        except Exception as e:  # any decode failure is a finding
            problems.append(f"img {k}: does not decode ({type(e).__name__})")
    return problems


def _chromium(args: List[str], user_dir: str, timeout: int = 90) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={user_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def browser_image_count(html_path: str, work: str) -> Optional[str]:
    """'ok/total' images loaded in Chromium, or None when the probe did not report."""
    probe = os.path.join(work, "probe.html")
    with open(html_path, encoding="utf-8") as f:
        page = f.read()
    page = page.replace("</body>", PROBE + "</body>", 1)
    with open(probe, "w", encoding="utf-8") as f:
        f.write(page)
    r = _chromium(["--virtual-time-budget=5000", "--dump-dom", "file://" + os.path.abspath(probe)],
                  os.path.join(work, "ud1"))
    m = re.search(r'data-imgs-ok="(\d+)/(\d+)"', r.stdout)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def screenshot(html_path: str, png: str, work: str, size: str = "1400,3000") -> None:
    """Full-window screenshot of the page into ``png`` (palette PNG to stay small)."""
    raw = os.path.join(work, "raw.png")
    r = _chromium([f"--screenshot={raw}", f"--window-size={size}", "--virtual-time-budget=5000",
                   "file://" + os.path.abspath(html_path)], os.path.join(work, "ud2"))
    if not os.path.isfile(raw):
        raise RuntimeError(f"chromium wrote no screenshot: {r.stderr[-500:]}")
    im = Image.open(raw).convert("RGB")
    os.makedirs(os.path.dirname(os.path.abspath(png)) or ".", exist_ok=True)
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)


def is_blank(png: str) -> bool:
    """A screenshot with (almost) one colour."""
    a = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    return a.std() < 2.0


def build_demo(work: str) -> str:
    """Synthetic data -> evaluate (resnet18, random weights) -> report.html; returns its path."""
    from wsol.cli import main

    root, out = os.path.join(work, "synthetic"), os.path.join(work, "run")
    if main(["make-synthetic", "--out", root, "--classes", "4", "--train-per-class", "1",
             "--test-per-class", "8", "--quiet"]) != 0:
        raise RuntimeError("make-synthetic failed")
    if main(["-q", "evaluate", "--dataset", "cub", "--root", root, "--backbone", "resnet18", "--weights", "random",
             "--out", out, "--save-cams", os.path.join(out, "cams")]) != 0:
        raise RuntimeError("evaluate failed")
    if main(["-q", "report", out, "--root", root, "--gallery", "4"]) != 0:
        raise RuntimeError("report failed")
    return os.path.join(out, "report.html")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", default=None, help="report.html to check (default: build a demo run)")
    ap.add_argument("--screenshot", default=None, help="where to save the screenshot PNG")
    ap.add_argument("--window-size", default="1400,3000")
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="wsol-browser-")
    try:
        html_path = args.report or build_demo(work)
        with open(html_path, encoding="utf-8") as f:
            problems = check_sources(f.read())
        n_src = len(IMG_SRC.findall(open(html_path, encoding="utf-8").read()))
        counts = browser_image_count(html_path, work)
        if counts is None:
            problems.append("the in-page probe did not report (page did not load?)")
        else:
            ok, total = (int(v) for v in counts.split("/"))
            if ok != total or total != n_src:
                problems.append(f"browser loaded {ok} of {total} images ({n_src} <img> in the file)")
        shot = args.screenshot or os.path.join(work, "screenshot.png")
        screenshot(html_path, shot, work, args.window_size)
        if is_blank(shot):
            problems.append("the screenshot is blank")
        for p in problems:
            print("FAIL:", p)
        if problems:
            return 1
        print(f"ok: all {n_src} images loaded in chromium; screenshot {shot} "
              f"({os.path.getsize(shot) / 1e3:.0f} kB)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
