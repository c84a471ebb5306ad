"""Exact one-pass threshold sweep: every τ's OpenCV boxes from two union-find passes.

``sweep_fast(q, taus)`` returns exactly what :func:`wsol.localize.boxes.sweep_reference`
returns -- the same boxes *in the same order* in 'all' mode and the same single box in
'largest' mode -- without calling ``cv2.findContours`` at all.

Why hand-written (numba) code: the reference traces contours once per distinct cut (up to
256 per map), which dominates WSOL evaluation time. The masks ``q > c`` are nested, so one
pass over the pixels sorted by value yields every level's components; but the result must
match OpenCV bit for bit (contour order, polygon areas, tie-breaking), which no library
component tree gives us. Every rule below was checked against OpenCV's output.

How OpenCV's ``RETR_TREE`` / ``CHAIN_APPROX_SIMPLE`` output is reproduced (mask ``M``,
8-connected foreground, 4-connected background, pixels outside the image are background):

* One *outer* contour per 8-connected foreground component C; its boundingRect is C's
  bounding box.
* One *hole* contour per 4-connected background component H that does not touch the image
  border; it is traced along the foreground pixels around H, so its boundingRect is H's
  bounding box grown by one pixel on every side.
* Polygon areas (``cv2.contourArea`` of the traced polygon through pixel centres) follow
  from 2x2 pixel blocks. With ``k`` = pixels of a set in a block,
  ``A8(S) = #{k=4} + 1/2 #{k=3}`` (8-connected set) and
  ``A4(S) = #{k>=2} + 1/2 #{k=1}`` (4-connected set). The outer contour of C has area
  ``A8(C) + sum of its holes' areas``; a hole H has area ``A4(H) + sum of the outer areas
  of the components inside it``. Both block sums are updated incrementally as pixels join.
* Order: a pre-order walk of the contour tree (hole -> parent component, component ->
  enclosing hole), siblings in *decreasing* raster index of their first pixel (the pixel
  where OpenCV's raster scan discovers them). The parent of a hole is the component holding
  the pixel left of its first pixel; the parent of a component is the hole holding the
  pixel left of its first pixel, if that pixel lies in a hole.
* 'largest' = the first contour in that order with the largest area (Python's ``max``).

Passes: background pixels in increasing value (4-connected union-find, kept *persistent*:
no path compression, each parent link stamped with its level, so "which hole held pixel p
at level c" can be asked afterwards) records the holes at every needed cut; foreground
pixels in decreasing value (8-connected union-find) then emits every needed cut. Only the
distinct integer cuts are processed, whatever the number of τ.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
from numba import njit

from wsol.localize.boxes import MODES, SWEEPS, SweepResult
from wsol.localize.maps import level_thresholds

_NEVER = np.int32(1 << 30)  # "has not happened (yet)" time stamp


@njit(cache=True)
def _grow2(a: np.ndarray, n: int) -> np.ndarray:
    """Return ``a`` (2-D) or a copy with at least ``n`` rows (doubling)."""
    if n <= a.shape[0]:
        return a
    b = np.empty((max(n, 2 * a.shape[0]), a.shape[1]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _find_compress(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True)
def _find_plain(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        x = parent[x]
    return x


@njit(cache=True)
def _find_at(parent: np.ndarray, ptime: np.ndarray, x: int, t: int) -> int:
    """Root of ``x`` in the persistent union-find as it stood after level ``t``."""
    while parent[x] != x and ptime[x] <= t:
        x = parent[x]
    return x


@njit(cache=True)
def _sweep_kernel(q2: np.ndarray, cuts: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes at every cut in ``cuts`` (sorted, unique, each in -1..255).

    Returns ``(all_boxes [n, 4] int32, start [m], end [m], largest [m, 4] int32)`` for the
    m cuts; cut i's 'all' boxes are ``all_boxes[start[i]:end[i]]``.
    """
    H, W = q2.shape
    N = H * W
    q = q2.ravel()
    ncut = cuts.shape[0]
    need = np.zeros(257, np.bool_)  # need[c + 1]
    cut_slot = np.full(257, -1, np.int64)
    for i in range(ncut):
        need[cuts[i] + 1] = True
        cut_slot[cuts[i] + 1] = i

    # counting sort of pixels by value
    start = np.zeros(257, np.int64)
    for i in range(N):
        start[q[i] + 1] += 1
    for v in range(256):
        start[v + 1] += start[v]
    order = np.empty(N, np.int32)
    fill = start[:256].copy()
    for i in range(N):
        v = q[i]
        order[fill[v]] = i
        fill[v] += 1

    # ---------------- pass A: background (q <= c), 4-connected, increasing ----------------
    pa = np.empty(N, np.int32)          # parent (never compressed: persistent)
    ptime = np.full(N, _NEVER, np.int32)  # level at which pa[x] stopped being x
    sza = np.empty(N, np.int32)
    btime = np.empty(N, np.int32)       # level at which the root's set touched the border
    keya = np.empty(N, np.int32)        # first pixel (raster) of the set
    bxa = np.empty((N, 4), np.int32)    # x0, y0, x1, y1
    a4 = np.empty(N, np.int64)          # A4 in half pixels
    inA = np.zeros(N, np.bool_)
    actA = np.empty(N, np.int32)        # roots not touching the border (holes)
    posA = np.empty(N, np.int32)
    nactA = 0
    # hole records per needed cut: root, key, x0, y0, x1, y1, a4
    hrec = np.empty((64, 7), np.int64)
    nh_tot = 0
    hoff = np.zeros(ncut + 1, np.int64)

    for v in range(256):
        for oi in range(start[v], start[v + 1]):
            p = order[oi]
            y = p // W
            x = p - y * W
            pa[p] = p
            sza[p] = 1
            keya[p] = p
            bxa[p, 0] = x
            bxa[p, 1] = y
            bxa[p, 2] = x
            bxa[p, 3] = y
            a4[p] = 0
            inA[p] = True
            if x == 0 or y == 0 or x == W - 1 or y == H - 1:
                btime[p] = v
            else:
                btime[p] = _NEVER
                actA[nactA] = p
                posA[p] = nactA
                nactA += 1
            for d in range(4):
                if d == 0:
                    if x == 0:
                        continue
                    n = p - 1
                elif d == 1:
                    if x == W - 1:
                        continue
                    n = p + 1
                elif d == 2:
                    if y == 0:
                        continue
                    n = p - W
                else:
                    if y == H - 1:
                        continue
                    n = p + W
                if not inA[n]:
                    continue
                r1 = _find_plain(pa, p)
                r2 = _find_plain(pa, n)
                if r1 == r2:
                    continue
                if sza[r1] < sza[r2]:
                    r1, r2 = r2, r1
                # r2 joins r1
                pa[r2] = r1
                ptime[r2] = v
                sza[r1] += sza[r2]
                if keya[r2] < keya[r1]:
                    keya[r1] = keya[r2]
                if bxa[r2, 0] < bxa[r1, 0]:
                    bxa[r1, 0] = bxa[r2, 0]
                if bxa[r2, 1] < bxa[r1, 1]:
                    bxa[r1, 1] = bxa[r2, 1]
                if bxa[r2, 2] > bxa[r1, 2]:
                    bxa[r1, 2] = bxa[r2, 2]
                if bxa[r2, 3] > bxa[r1, 3]:
                    bxa[r1, 3] = bxa[r2, 3]
                a4[r1] += a4[r2]
                b1 = btime[r1] <= v
                b2 = btime[r2] <= v
                if not b2:  # r2 leaves the hole list (no longer a root)
                    j = posA[r2]
                    nactA -= 1
                    last = actA[nactA]
                    actA[j] = last
                    posA[last] = j
                if b2 and not b1:  # r1 now touches the border
                    btime[r1] = v
                    j = posA[r1]
                    nactA -= 1
                    last = actA[nactA]
                    actA[j] = last
                    posA[last] = j
            # A4 block sums: delta of h(k) is 1/2 for k = 1, 2 (the block's new count)
            if H > 1 and W > 1:
                rp = _find_plain(pa, p)
                for by in range(y - 1, y + 1):
                    if by < 0 or by > H - 2:
                        continue
                    for bx in range(x - 1, x + 1):
                        if bx < 0 or bx > W - 2:
                            continue
                        b0 = by * W + bx
                        k = np.int64(inA[b0]) + inA[b0 + 1] + inA[b0 + W] + inA[b0 + W + 1]
                        if k <= 2:
                            a4[rp] += 1
        if need[v + 1]:
            ci = cut_slot[v + 1]
            hrec = _grow2(hrec, nh_tot + nactA)
            for j in range(nactA):
                r = actA[j]
                hrec[nh_tot, 0] = r
                hrec[nh_tot, 1] = keya[r]
                hrec[nh_tot, 2] = bxa[r, 0]
                hrec[nh_tot, 3] = bxa[r, 1]
                hrec[nh_tot, 4] = bxa[r, 2]
                hrec[nh_tot, 5] = bxa[r, 3]
                hrec[nh_tot, 6] = a4[r]
                nh_tot += 1
            hoff[ci + 1] = nh_tot
    # (cut -1 has no background: its hole range hoff[0]..hoff[1] stays empty)

    # ---------------- pass B: foreground (q > c), 8-connected, decreasing ----------------
    pb = np.empty(N, np.int32)
    szb = np.empty(N, np.int32)
    keyb = np.empty(N, np.int32)
    bxb = np.empty((N, 4), np.int32)
    a8 = np.empty(N, np.int64)          # A8 in half pixels
    inB = np.zeros(N, np.bool_)
    actB = np.empty(N, np.int32)
    posB = np.empty(N, np.int32)
    nactB = 0
    slotB = np.empty(N, np.int32)       # root -> node index at the level being emitted
    slotA = np.empty(N, np.int32)       # hole root -> node index

    out = np.empty((max(16, 2 * ncut), 4), np.int32)
    nout = 0
    ostart = np.zeros(ncut, np.int64)
    oend = np.zeros(ncut, np.int64)
    largest = np.zeros((ncut, 4), np.int32)

    # scratch for tree building (grown on demand)
    cap = 16
    nkey = np.empty(cap, np.int64)
    npar = np.empty(cap, np.int64)
    narea = np.empty(cap, np.int64)
    nbox = np.empty((cap, 4), np.int64)
    chead = np.empty(cap + 1, np.int64)
    ctail = np.empty(cap + 1, np.int64)
    cnext = np.empty(cap, np.int64)
    pre = np.empty(cap, np.int64)
    stack = np.empty(cap + 1, np.int64)

    for step in range(257):
        v = 255 - step  # emit cut c = v (pixels with q > v are in), then add level v
        if need[v + 1]:
            ci = cut_slot[v + 1]
            ostart[ci] = nout
            h0 = hoff[ci]
            h1 = hoff[ci + 1]
            nh = h1 - h0
            nn = nactB + nh
            if nactB == 0:
                out = _grow2(out, nout + 1)
                out[nout, 0] = 0
                out[nout, 1] = 0
                out[nout, 2] = 0
                out[nout, 3] = 0
                nout += 1
                # largest stays [0, 0, 0, 0]
            else:
                if nn > cap:
                    cap = 2 * nn
                    nkey = np.empty(cap, np.int64)
                    npar = np.empty(cap, np.int64)
                    narea = np.empty(cap, np.int64)
                    nbox = np.empty((cap, 4), np.int64)
                    chead = np.empty(cap + 1, np.int64)
                    ctail = np.empty(cap + 1, np.int64)
                    cnext = np.empty(cap, np.int64)
                    pre = np.empty(cap, np.int64)
                    stack = np.empty(cap + 1, np.int64)
                # nodes 0..nactB-1: components; nactB..nn-1: holes
                for j in range(nactB):
                    r = actB[j]
                    slotB[r] = j
                    nkey[j] = keyb[r]
                    narea[j] = a8[r]
                    nbox[j, 0] = bxb[r, 0]
                    nbox[j, 1] = bxb[r, 1]
                    nbox[j, 2] = min(bxb[r, 2] + 1, W - 1)
                    nbox[j, 3] = min(bxb[r, 3] + 1, H - 1)
                    npar[j] = -1
                for j in range(nh):
                    hr = hrec[h0 + j]
                    k = nactB + j
                    slotA[hr[0]] = k
                    nkey[k] = hr[1]
                    narea[k] = hr[6]
                    nbox[k, 0] = hr[2] - 1
                    nbox[k, 1] = hr[3] - 1
                    nbox[k, 2] = min(hr[4] + 2, W - 1)
                    nbox[k, 3] = min(hr[5] + 2, H - 1)
                    # parent: the component holding the pixel left of the hole's first pixel
                    npar[k] = slotB[_find_compress(pb, hr[1] - 1)]
                if nh > 0:
                    for j in range(nactB):
                        kp = nkey[j]
                        if kp % W == 0:
                            continue
                        ra = _find_at(pa, ptime, kp - 1, v)
                        if btime[ra] > v:  # the pixel on the left lies in a hole
                            npar[j] = slotA[ra]
                # children lists in decreasing key order, then a pre-order walk
                srt = np.argsort(nkey[:nn])
                for j in range(nn + 1):
                    chead[j] = -1
                for jj in range(nn - 1, -1, -1):
                    j = srt[jj]
                    pnode = npar[j] if npar[j] >= 0 else nn
                    cnext[j] = -1
                    if chead[pnode] < 0:
                        chead[pnode] = j
                    else:
                        cnext[ctail[pnode]] = j
                    ctail[pnode] = j
                npre = 0
                sp = 0
                c0 = chead[nn]
                while c0 >= 0 or sp > 0:
                    if c0 < 0:
                        sp -= 1
                        c0 = cnext[stack[sp]]
                        continue
                    pre[npre] = c0
                    npre += 1
                    stack[sp] = c0
                    sp += 1
                    c0 = chead[c0]
                # areas: each contour's area adds to its parent's (post-order = reverse pre-order)
                if nh > 0:
                    for jj in range(nn - 1, -1, -1):
                        j = pre[jj]
                        if npar[j] >= 0:
                            narea[npar[j]] += narea[j]
                out = _grow2(out, nout + nn)
                best = -1
                besta = np.int64(-1)
                for jj in range(nn):
                    j = pre[jj]
                    out[nout, 0] = nbox[j, 0]
                    out[nout, 1] = nbox[j, 1]
                    out[nout, 2] = nbox[j, 2]
                    out[nout, 3] = nbox[j, 3]
                    nout += 1
                    if narea[j] > besta:
                        besta = narea[j]
                        best = j
                largest[ci, 0] = nbox[best, 0]
                largest[ci, 1] = nbox[best, 1]
                largest[ci, 2] = nbox[best, 2]
                largest[ci, 3] = nbox[best, 3]
            oend[ci] = nout
        if v < 0:
            break
        for oi in range(start[v], start[v + 1]):
            p = order[oi]
            y = p // W
            x = p - y * W
            pb[p] = p
            szb[p] = 1
            keyb[p] = p
            bxb[p, 0] = x
            bxb[p, 1] = y
            bxb[p, 2] = x
            bxb[p, 3] = y
            a8[p] = 0
            inB[p] = True
            actB[nactB] = p
            posB[p] = nactB
            nactB += 1
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= H:
                    continue
                for dx in range(-1, 2):
                    xx = x + dx
                    if xx < 0 or xx >= W or (dx == 0 and dy == 0):
                        continue
                    n = yy * W + xx
                    if not inB[n]:
                        continue
                    r1 = _find_compress(pb, p)
                    r2 = _find_compress(pb, n)
                    if r1 == r2:
                        continue
                    if szb[r1] < szb[r2]:
                        r1, r2 = r2, r1
                    pb[r2] = r1
                    szb[r1] += szb[r2]
                    if keyb[r2] < keyb[r1]:
                        keyb[r1] = keyb[r2]
                    if bxb[r2, 0] < bxb[r1, 0]:
                        bxb[r1, 0] = bxb[r2, 0]
                    if bxb[r2, 1] < bxb[r1, 1]:
                        bxb[r1, 1] = bxb[r2, 1]
                    if bxb[r2, 2] > bxb[r1, 2]:
                        bxb[r1, 2] = bxb[r2, 2]
                    if bxb[r2, 3] > bxb[r1, 3]:
                        bxb[r1, 3] = bxb[r2, 3]
                    a8[r1] += a8[r2]
                    j = posB[r2]
                    nactB -= 1
                    last = actB[nactB]
                    actB[j] = last
                    posB[last] = j
            # A8 block sums: delta of g(k) is 1/2 for k = 3, 4 (the block's new count)
            if H > 1 and W > 1:
                rp = _find_compress(pb, p)
                for by in range(y - 1, y + 1):
                    if by < 0 or by > H - 2:
                        continue
                    for bx in range(x - 1, x + 1):
                        if bx < 0 or bx > W - 2:
                            continue
                        b0 = by * W + bx
                        k = np.int64(inB[b0]) + inB[b0 + 1] + inB[b0 + W] + inB[b0 + W + 1]
                        if k >= 3:
                            a8[rp] += 1
    return out[:nout], ostart, oend, largest


def sweep_fast(q: np.ndarray, taus: Sequence[float]) -> SweepResult:
    """Boxes at every τ of a quantized uint8 map, identical to ``sweep_reference``.

    Same boxes in the same order ('all') and the same box ('largest') at every τ; distinct
    integer cuts are computed once and their arrays shared between τ (as the reference does).
    """
    q = np.ascontiguousarray(q, dtype=np.uint8)
    if q.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {q.shape}")
    cuts = level_thresholds(int(q.max()), taus)
    eff = np.clip(cuts, -1, 255)  # q > c is the same mask for every c <= -1 (and c >= 255)
    uniq, inv = np.unique(eff, return_inverse=True)
    all_boxes, start, end, largest = _sweep_kernel(q, uniq.astype(np.int64))
    per_all = [all_boxes[s:e] for s, e in zip(start.tolist(), end.tolist())]
    per_largest = [largest[i: i + 1] for i in range(len(uniq))]
    inv = inv.ravel().tolist()
    out: Dict[str, List[np.ndarray]] = {
        "all": [per_all[i] for i in inv],
        "largest": [per_largest[i] for i in inv],
    }
    assert tuple(out) == MODES
    return SweepResult(out)


SWEEPS["fast"] = sweep_fast
