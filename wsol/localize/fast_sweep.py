"""Exact one-pass threshold sweep: every τ's OpenCV boxes from union-find passes.

``sweep_fast(q, taus)`` returns exactly what :func:`wsol.localize.boxes.sweep_reference`
returns -- the same boxes *in the same order* in 'all' mode and the same single box in
'largest' mode -- without calling ``cv2.findContours``.

Why hand-written (numba) code: the reference traces contours once per distinct cut (up to
256 per map), which dominates WSOL evaluation time. The masks ``q > c`` are nested, so one
pass over the pixels sorted by value yields every level's components; but the result must
match OpenCV bit for bit (contour order, polygon areas, tie-breaking), which no library
component tree gives, and a Python-level loop over 50k pixels would be slower than OpenCV.

How OpenCV's ``RETR_TREE`` / ``CHAIN_APPROX_SIMPLE`` output is reproduced (mask ``M``,
8-connected foreground, 4-connected background, pixels outside the image are background);
every rule was checked against OpenCV (tests/test_sweep.py):

* One *outer* contour per 8-connected foreground component C; its boundingRect is C's
  bounding box.
* One *hole* contour per 4-connected background component H not touching the image border;
  it is traced along the foreground pixels around H, so its boundingRect is H's bounding box
  grown by one pixel on every side.
* Polygon areas (``cv2.contourArea`` of the polygon through pixel centres) follow from
  2x2 pixel blocks. With ``k`` = pixels of a set in a block,
  ``A8(S) = #{k=4} + 1/2 #{k=3}`` (8-connected set) and ``A4(S) = #{k>=2} + 1/2 #{k=1}``
  (4-connected set). The outer contour of C has area ``A8(C) + sum of its holes' areas``; a
  hole H has area ``A4(H) + sum of the outer areas of the components inside it``. Both block
  sums change only in the four blocks around a pixel that joins, so they are kept per
  union-find root through a 256-entry table indexed by the pixel's 8-neighbour bit mask.
* Order: a pre-order walk of the contour tree (hole -> parent component, component ->
  enclosing hole), siblings in *decreasing* raster index of their first pixel (where
  OpenCV's raster scan discovers them). A hole's parent is the component holding the pixel
  left of the hole's first pixel; a component's parent is the hole holding the pixel left of
  its first pixel, if that pixel lies in a hole.
* 'largest' = the first contour in that order with the largest area (Python's ``max``).

Passes (all over pixels in a counting-sorted order, only at the distinct integer cuts):

1. foreground, decreasing value, 8-connected union-find. It also keeps the Euler number
   of the mask (bit-quad counts, same neighbour-mask table), so ``#holes = #components -
   Euler`` is known at every cut. Cuts without holes -- nearly all of them on real CAMs --
   are emitted right away (components sorted by first pixel, areas = A8).
2. only if some needed cut has holes: background, increasing value, 4-connected union-find
   kept *persistent* (no path compression; each parent link stamped with its level, so
   "which hole held pixel p at cut c" can be asked later) records those cuts' holes; then
   the foreground pass is replayed to emit those cuts with the full contour tree.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
from numba import njit

from wsol.localize.boxes import MODES, SWEEPS, SweepResult
from wsol.localize.maps import level_thresholds

# 8-neighbour ring, bit b of the mask: N, NE, E, SE, S, SW, W, NW
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
# the four 2x2 blocks around the centre pixel as (tl, tr, bl, br); -1 = the centre
_BLOCKS = ((7, 0, 6, -1), (0, 1, -1, 2), (6, -1, 5, 4), (-1, 2, 4, 3))
_NEVER = 1 << 30  # time stamp: has not happened


def _groups(mask: int, four: bool) -> List[int]:
    """One representative ring bit per group of set neighbours already connected to each other.

    8-connected (foreground): set ring pixels that are 8-adjacent are in one group.
    4-connected (background): only N/E/S/W join the centre; they form one group when
    4-adjacent paths through set ring pixels link them.
    """
    bits = [b for b in range(8) if mask >> b & 1]
    lab = {b: b for b in bits}

    def root(b: int) -> int:
        while lab[b] != b:
            b = lab[b]
        return b

    for i in bits:
        for j in bits:
            (y1, x1), (y2, x2) = _RING[i], _RING[j]
            adj = abs(y1 - y2) + abs(x1 - x2) == 1 if four else max(abs(y1 - y2), abs(x1 - x2)) == 1
            if adj:
                lab[root(i)] = root(j)
    reps: Dict[int, int] = {}
    for b in bits:
        if four and b % 2 == 1:  # corners do not touch the centre in 4-connectivity
            continue
        reps.setdefault(root(b), b)
    return sorted(reps.values())


def _tables() -> Tuple[np.ndarray, ...]:
    """Lookup tables indexed by the 8-neighbour mask of a joining pixel."""
    g8n = np.zeros(256, np.int32)
    g8r = np.zeros((256, 4), np.int32)
    g4n = np.zeros(256, np.int32)
    g4r = np.zeros((256, 4), np.int32)
    da8 = np.zeros(256, np.int32)   # A8 change, half pixels
    da4 = np.zeros(256, np.int32)   # A4 change, half pixels
    deul = np.zeros(256, np.int32)  # Euler number (8-connected) change, quarter units

    def quad(bits: Tuple[int, int, int, int]) -> int:
        n = sum(bits)
        if n == 1:
            return 1
        if n == 3:
            return -1
        if n == 2 and bits[0] == bits[3]:  # diagonal pair
            return -2
        return 0

    for m in range(256):
        r8, r4 = _groups(m, False), _groups(m, True)
        g8n[m], g4n[m] = len(r8), len(r4)
        g8r[m, : len(r8)] = r8
        g4r[m, : len(r4)] = r4
        for blk in _BLOCKS:
            before = tuple(0 if b < 0 else (m >> b) & 1 for b in blk)
            after = tuple(1 if b < 0 else (m >> b) & 1 for b in blk)
            k = sum(after)
            da8[m] += 1 if k >= 3 else 0
            da4[m] += 1 if k <= 2 else 0
            deul[m] += quad(after) - quad(before)
    return g8n, g8r, g4n, g4r, da8, da4, deul


_G8N, _G8R, _G4N, _G4R, _DA8, _DA4, _DEUL = _tables()


@njit(cache=True, inline="always")
def _find(parent: np.ndarray, x: int) -> int:
    """Root (no compression: both union-finds are persistent, see _find_at)."""
    while parent[x] != x:
        x = parent[x]
    return x


@njit(cache=True, inline="always")
def _find_at(parent: np.ndarray, ptime: np.ndarray, x: int, t: int, up: bool) -> int:
    """Root of ``x`` as the union-find stood at level ``t``.

    Links are never compressed and each is stamped with the level at which it was made;
    ``up``: levels increase during the pass (background), else they decrease (foreground).
    """
    if up:
        while parent[x] != x and ptime[x] <= t:
            x = parent[x]
    else:
        while parent[x] != x and ptime[x] > t:
            x = parent[x]
    return x


@njit(cache=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` (2-D) or a copy with room for at least ``n`` rows."""
    if n <= a.shape[0]:
        return a
    b = np.empty((max(n, 2 * a.shape[0]), a.shape[1]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _masks(qp: np.ndarray, wp: int, descending: bool) -> np.ndarray:
    """8-neighbour bit mask (bit order: _RING) of the neighbours already in the set when each
    pixel of the padded map ``qp`` (padding -1) joins it.

    Pixels join by value (decreasing for the foreground, increasing for the background),
    ties in raster order, so a neighbour is in iff its value comes strictly earlier, or is
    equal and the neighbour precedes in raster order (N, NE, W, NW). Padding is never in the
    foreground and always in the background. Unsigned indices let LLVM vectorize the loop
    (numba's negative-index wraparound check on signed indices prevents it).
    """
    n = qp.shape[0]
    mb = np.zeros(n, np.uint8)
    w = np.uint64(wp)
    one = np.uint64(1)
    lo = w + one
    hi = np.uint64(n) - w - one
    if descending:
        for p in range(lo, hi):
            c = qp[p]
            mb[p] = (
                np.uint8(qp[p - w] >= c)
                | (np.uint8(qp[p - w + one] >= c) << np.uint8(1))
                | (np.uint8(qp[p + one] > c) << np.uint8(2))
                | (np.uint8(qp[p + w + one] > c) << np.uint8(3))
                | (np.uint8(qp[p + w] > c) << np.uint8(4))
                | (np.uint8(qp[p + w - one] > c) << np.uint8(5))
                | (np.uint8(qp[p - one] >= c) << np.uint8(6))
                | (np.uint8(qp[p - w - one] >= c) << np.uint8(7))
            )
    else:
        for p in range(lo, hi):
            c = qp[p]
            mb[p] = (
                np.uint8(qp[p - w] <= c)
                | (np.uint8(qp[p - w + one] <= c) << np.uint8(1))
                | (np.uint8(qp[p + one] < c) << np.uint8(2))
                | (np.uint8(qp[p + w + one] < c) << np.uint8(3))
                | (np.uint8(qp[p + w] < c) << np.uint8(4))
                | (np.uint8(qp[p + w - one] < c) << np.uint8(5))
                | (np.uint8(qp[p - one] <= c) << np.uint8(6))
                | (np.uint8(qp[p - w - one] <= c) << np.uint8(7))
            )
    return mb


@njit(cache=True)
def _counting_sort(q2: np.ndarray, wp: int) -> Tuple[np.ndarray, np.ndarray]:
    """Padded indices of the pixels sorted by value, ties in raster order; level offsets."""
    H, W = q2.shape
    qf = q2.ravel()
    n = qf.shape[0]
    h4 = np.zeros((4, 257), np.int64)  # four histograms: no store-to-load chains on runs
    i = np.uint64(0)
    n4 = np.uint64(n - n % 4)
    while i < n4:
        h4[0, qf[i] + 1] += 1
        h4[1, qf[i + np.uint64(1)] + 1] += 1
        h4[2, qf[i + np.uint64(2)] + 1] += 1
        h4[3, qf[i + np.uint64(3)] + 1] += 1
        i += np.uint64(4)
    while i < np.uint64(n):
        h4[0, qf[i] + 1] += 1
        i += np.uint64(1)
    start = h4[0] + h4[1] + h4[2] + h4[3]
    for v in range(256):
        start[v + 1] += start[v]
    nxt = start[:256].copy()
    order = np.empty(n, np.int32)
    for y in range(H):
        base = (y + 1) * wp + 1
        x = 0
        while x < W:  # runs of equal values keep their slot in a register
            v = q2[y, x]
            j = nxt[v]
            while x < W and q2[y, x] == v:
                order[j] = base + x
                j += 1
                x += 1
            nxt[v] = j
    return order, start


@njit(cache=True)
def _emit(
    nkey: np.ndarray,
    npar: np.ndarray,
    narea: np.ndarray,
    nbox: np.ndarray,
    nn: int,
    tree: bool,
    out: np.ndarray,
    nout: int,
    largest: np.ndarray,
    ci: int,
) -> Tuple[np.ndarray, int]:
    """Write one cut's contours in OpenCV's order to ``out``; its 'largest' box to ``largest[ci]``.

    Nodes are sorted by first pixel, decreasing; with ``tree`` they are walked in pre-order
    of the contour tree (``npar``: parent node or -1) and each contour's area gains its
    children's. The largest is the first node of maximal area in that order.
    """
    if nn == 0:
        out = _grow(out, nout + 1)
        out[nout, :] = 0
        largest[ci, :] = 0
        return out, nout + 1
    srt = np.empty(nn, np.int64)
    if nn <= 32:
        for i in range(nn):
            kk = nkey[i]
            jj = i - 1
            while jj >= 0 and nkey[srt[jj]] < kk:
                srt[jj + 1] = srt[jj]
                jj -= 1
            srt[jj + 1] = i
    else:
        tmp = np.argsort(nkey[:nn])
        for i in range(nn):
            srt[i] = tmp[nn - 1 - i]
    if tree:
        chead = np.full(nn + 1, -1, np.int64)
        ctail = np.empty(nn + 1, np.int64)
        cnext = np.empty(nn, np.int64)
        for i in range(nn):  # children lists keep the decreasing-key order
            j = srt[i]
            pn = npar[j] if npar[j] >= 0 else nn
            cnext[j] = -1
            if chead[pn] < 0:
                chead[pn] = j
            else:
                cnext[ctail[pn]] = j
            ctail[pn] = j
        pre = np.empty(nn, np.int64)
        stack = np.empty(nn + 1, np.int64)
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
        for i in range(nn - 1, -1, -1):  # post-order: areas include the children's
            j = pre[i]
            if npar[j] >= 0:
                narea[npar[j]] += narea[j]
    else:
        pre = srt
    out = _grow(out, nout + nn)
    best = pre[0]
    besta = narea[best]
    for i in range(nn):
        j = pre[i]
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
    return out, nout


@njit(cache=True)
def _sweep_kernel(
    q2: np.ndarray,
    qp: np.ndarray,
    cuts: np.ndarray,
    g8n: np.ndarray,
    g8r: np.ndarray,
    g4n: np.ndarray,
    g4r: np.ndarray,
    da8: np.ndarray,
    da4: np.ndarray,
    deul: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Boxes of ``q2 > c`` for every cut c in ``cuts`` (sorted, unique, each in -1..255).

    ``qp`` is ``q2`` padded by one pixel of -1, flattened (int16). Returns
    ``(all_boxes [n, 4] int32, start [m], end [m], largest [m, 4] int32, n_tree)``; cut i's
    'all' boxes are ``all_boxes[start[i]:end[i]]``; ``n_tree`` counts the cuts with holes
    (emitted through the full contour tree).
    """
    H, W = q2.shape
    wp = W + 2
    npix = (H + 2) * wp
    inv = 1.0 / wp  # row of padded index p: int((p + 0.5) * inv), exact for any real size
    ncut = cuts.shape[0]
    slot = np.full(257, -1, np.int64)  # cut c -> index, at slot[c + 1]
    for i in range(ncut):
        slot[cuts[i] + 1] = i
    cmin = cuts[0]
    offs = np.empty(8, np.int64)  # ring offsets in the padded index space
    offs[0] = -wp
    offs[1] = -wp + 1
    offs[2] = 1
    offs[3] = wp + 1
    offs[4] = wp
    offs[5] = wp - 1
    offs[6] = -1
    offs[7] = -wp - 1

    mb = _masks(qp, wp, True)
    order, start = _counting_sort(q2, wp)

    # ---------- foreground pass: 8-connected, decreasing values ----------
    # per root: size, first and last pixel (rows), x range, A8 (half pixels)
    pb = np.empty(npix, np.int32)
    tb = np.empty(npix, np.int32)  # level at which the link pb[x] was made
    szb = np.empty(npix, np.int32)
    keyb = np.empty(npix, np.int32)
    lastb = np.empty(npix, np.int32)
    b0x = np.empty(npix, np.int32)
    b1x = np.empty(npix, np.int32)
    a8 = np.empty(npix, np.int32)
    actb = np.empty(H * W + 1, np.int32)  # current roots
    posb = np.empty(npix, np.int32)
    nactb = 0
    eul = 0  # Euler number of the mask, quarter units

    out = np.empty((max(16, 2 * ncut), 4), np.int32)
    nout = 0
    ostart = np.zeros(ncut, np.int64)
    oend = np.zeros(ncut, np.int64)
    largest = np.zeros((ncut, 4), np.int32)
    # cuts with holes wait for the background pass; their components are kept here
    deferred = np.zeros(ncut, np.bool_)
    ndef = 0
    dmax = -2
    crec = np.empty((16, 6), np.int64)  # root, first, last, x0, x1, A8
    ncrec = 0
    cbeg = np.zeros(ncut, np.int64)  # cut i's components: crec[cbeg[i]:cend[i]]
    cend = np.zeros(ncut, np.int64)
    cap = 16
    nkey = np.empty(cap, np.int64)
    npar = np.empty(cap, np.int64)
    narea = np.empty(cap, np.int64)
    nbox = np.empty((cap, 4), np.int64)

    # pending updates of the root the last pixels joined (kept in registers)
    cr = -1
    c_sz = 0
    c_key = _NEVER
    c_last = -1
    c_x0 = _NEVER
    c_x1 = -1
    c_a8 = 0
    for step in range(257):
        v = 255 - step  # the mask is q > v here: emit cut v, then add level v
        ci = slot[v + 1]
        if ci >= 0:
            if cr >= 0:
                szb[cr] += c_sz
                keyb[cr] = min(keyb[cr], c_key)
                lastb[cr] = max(lastb[cr], c_last)
                b0x[cr] = min(b0x[cr], c_x0)
                b1x[cr] = max(b1x[cr], c_x1)
                a8[cr] += c_a8
                cr = -1
                c_sz = 0
                c_key = _NEVER
                c_last = -1
                c_x0 = _NEVER
                c_x1 = -1
                c_a8 = 0
            if nactb - eul // 4 > 0:  # #holes = #components - Euler number
                deferred[ci] = True
                ndef += 1
                dmax = max(dmax, v)
                cbeg[ci] = ncrec
                crec = _grow(crec, ncrec + nactb)
                for i in range(nactb):
                    r = actb[i]
                    crec[ncrec, 0] = r
                    crec[ncrec, 1] = keyb[r]
                    crec[ncrec, 2] = lastb[r]
                    crec[ncrec, 3] = b0x[r]
                    crec[ncrec, 4] = b1x[r]
                    crec[ncrec, 5] = a8[r]
                    ncrec += 1
                cend[ci] = ncrec
            else:
                if nactb > cap:
                    cap = 2 * nactb
                    nkey = np.empty(cap, np.int64)
                    npar = np.empty(cap, np.int64)
                    narea = np.empty(cap, np.int64)
                    nbox = np.empty((cap, 4), np.int64)
                for i in range(nactb):
                    r = actb[i]
                    nkey[i] = keyb[r]
                    narea[i] = a8[r]
                    nbox[i, 0] = b0x[r] - 1
                    nbox[i, 1] = int((keyb[r] + 0.5) * inv) - 1
                    nbox[i, 2] = min(b1x[r], W - 1)
                    nbox[i, 3] = min(int((lastb[r] + 0.5) * inv), H - 1)
                ostart[ci] = nout
                out, nout = _emit(nkey, npar, narea, nbox, nactb, False, out, nout, largest, ci)
                oend[ci] = nout
        if v <= cmin:
            break
        for j in range(start[v], start[v + 1]):
            p = np.int64(order[j])
            m = mb[p]
            ng = g8n[m]
            eul += deul[m]
            px = p - int((p + 0.5) * inv) * wp
            if ng == 0:  # a new component
                pb[p] = p
                szb[p] = 1
                keyb[p] = p
                lastb[p] = p
                b0x[p] = px
                b1x[p] = px
                a8[p] = 0
                actb[nactb] = p
                posb[p] = nactb
                nactb += 1
                continue
            r = _find(pb, p + offs[g8r[m, 0]])
            for g in range(1, ng):
                r2 = _find(pb, p + offs[g8r[m, g]])
                if r2 == r:
                    continue
                if cr >= 0:
                    szb[cr] += c_sz
                    keyb[cr] = min(keyb[cr], c_key)
                    lastb[cr] = max(lastb[cr], c_last)
                    b0x[cr] = min(b0x[cr], c_x0)
                    b1x[cr] = max(b1x[cr], c_x1)
                    a8[cr] += c_a8
                    cr = -1
                    c_sz = 0
                    c_key = _NEVER
                    c_last = -1
                    c_x0 = _NEVER
                    c_x1 = -1
                    c_a8 = 0
                if szb[r] < szb[r2]:
                    r, r2 = r2, r
                pb[r2] = r
                tb[r2] = v
                szb[r] += szb[r2]
                keyb[r] = min(keyb[r], keyb[r2])
                lastb[r] = max(lastb[r], lastb[r2])
                b0x[r] = min(b0x[r], b0x[r2])
                b1x[r] = max(b1x[r], b1x[r2])
                a8[r] += a8[r2]
                i = posb[r2]
                nactb -= 1
                last = actb[nactb]
                actb[i] = last
                posb[last] = i
            if r != cr:
                if cr >= 0:
                    szb[cr] += c_sz
                    keyb[cr] = min(keyb[cr], c_key)
                    lastb[cr] = max(lastb[cr], c_last)
                    b0x[cr] = min(b0x[cr], c_x0)
                    b1x[cr] = max(b1x[cr], c_x1)
                    a8[cr] += c_a8
                    c_sz = 0
                    c_key = _NEVER
                    c_last = -1
                    c_x0 = _NEVER
                    c_x1 = -1
                    c_a8 = 0
                cr = r
            pb[p] = r
            tb[p] = v
            c_sz += 1
            c_key = min(c_key, p)
            c_last = max(c_last, p)
            c_x0 = min(c_x0, px)
            c_x1 = max(c_x1, px)
            c_a8 += da8[m]

    if ndef > 0:
        # ---------- background pass: 4-connected, increasing values, up to the last deferred cut ----------
        ma = _masks(qp, wp, False)
        pa = np.empty(npix, np.int32)
        ta = np.empty(npix, np.int32)
        sza = np.empty(npix, np.int32)
        btime = np.empty(npix, np.int32)  # level at which the root's set touched the border
        keya = np.empty(npix, np.int32)
        lasta = np.empty(npix, np.int32)
        h0x = np.empty(npix, np.int32)
        h1x = np.empty(npix, np.int32)
        a4 = np.empty(npix, np.int32)
        acta = np.empty(H * W + 1, np.int32)  # roots not touching the border: the holes
        posa = np.empty(npix, np.int32)
        nacta = 0
        hrec = np.empty((16, 6), np.int64)  # root, first, last, x0, x1, A4
        nh = 0
        hbeg = np.zeros(ncut, np.int64)  # cut i's holes: hrec[hbeg[i]:hend[i]]
        hend = np.zeros(ncut, np.int64)
        # the padding ring is one background set (root 0) touching the border from the start
        for x in range(wp):
            pa[x] = 0
            ta[x] = -1
            pa[npix - wp + x] = 0
            ta[npix - wp + x] = -1
        for y in range(1, H + 1):
            pa[y * wp] = 0
            ta[y * wp] = -1
            pa[y * wp + wp - 1] = 0
            ta[y * wp + wp - 1] = -1
        sza[0] = 2 * wp + 2 * H
        btime[0] = -1
        cr = -1
        c_sz = 0
        c_key = _NEVER
        c_last = -1
        c_x0 = _NEVER
        c_x1 = -1
        c_a8 = 0
        for v in range(dmax + 1):
            for j in range(start[v], start[v + 1]):
                p = np.int64(order[j])
                m = ma[p]
                ng = g4n[m]
                px = p - int((p + 0.5) * inv) * wp
                if ng == 0:  # a new hole
                    pa[p] = p
                    sza[p] = 1
                    keya[p] = p
                    lasta[p] = p
                    h0x[p] = px
                    h1x[p] = px
                    a4[p] = da4[m]
                    btime[p] = _NEVER
                    acta[nacta] = p
                    posa[p] = nacta
                    nacta += 1
                    continue
                r = _find(pa, p + offs[g4r[m, 0]])
                for g in range(1, ng):
                    r2 = _find(pa, p + offs[g4r[m, g]])
                    if r2 == r:
                        continue
                    if cr >= 0:
                        sza[cr] += c_sz
                        keya[cr] = min(keya[cr], c_key)
                        lasta[cr] = max(lasta[cr], c_last)
                        h0x[cr] = min(h0x[cr], c_x0)
                        h1x[cr] = max(h1x[cr], c_x1)
                        a4[cr] += c_a8
                        cr = -1
                        c_sz = 0
                        c_key = _NEVER
                        c_last = -1
                        c_x0 = _NEVER
                        c_x1 = -1
                        c_a8 = 0
                    if sza[r] < sza[r2]:
                        r, r2 = r2, r
                    pa[r2] = r
                    ta[r2] = v
                    sza[r] += sza[r2]
                    keya[r] = min(keya[r], keya[r2])
                    lasta[r] = max(lasta[r], lasta[r2])
                    h0x[r] = min(h0x[r], h0x[r2])
                    h1x[r] = max(h1x[r], h1x[r2])
                    a4[r] += a4[r2]
                    bd1 = btime[r] <= v
                    bd2 = btime[r2] <= v
                    if not bd2:  # r2 is no longer a root: it leaves the hole list
                        i = posa[r2]
                        nacta -= 1
                        last = acta[nacta]
                        acta[i] = last
                        posa[last] = i
                    if bd2 and not bd1:  # r now touches the border
                        btime[r] = v
                        i = posa[r]
                        nacta -= 1
                        last = acta[nacta]
                        acta[i] = last
                        posa[last] = i
                if r != cr:
                    if cr >= 0:
                        sza[cr] += c_sz
                        keya[cr] = min(keya[cr], c_key)
                        lasta[cr] = max(lasta[cr], c_last)
                        h0x[cr] = min(h0x[cr], c_x0)
                        h1x[cr] = max(h1x[cr], c_x1)
                        a4[cr] += c_a8
                        c_sz = 0
                        c_key = _NEVER
                        c_last = -1
                        c_x0 = _NEVER
                        c_x1 = -1
                        c_a8 = 0
                    cr = r
                pa[p] = r
                ta[p] = v
                c_sz += 1
                c_key = min(c_key, p)
                c_last = max(c_last, p)
                c_x0 = min(c_x0, px)
                c_x1 = max(c_x1, px)
                c_a8 += da4[m]
            ci = slot[v + 1]
            if ci >= 0 and deferred[ci]:
                if cr >= 0:
                    sza[cr] += c_sz
                    keya[cr] = min(keya[cr], c_key)
                    lasta[cr] = max(lasta[cr], c_last)
                    h0x[cr] = min(h0x[cr], c_x0)
                    h1x[cr] = max(h1x[cr], c_x1)
                    a4[cr] += c_a8
                    cr = -1
                    c_sz = 0
                    c_key = _NEVER
                    c_last = -1
                    c_x0 = _NEVER
                    c_x1 = -1
                    c_a8 = 0
                hbeg[ci] = nh
                hrec = _grow(hrec, nh + nacta)
                for i in range(nacta):
                    r = acta[i]
                    hrec[nh, 0] = r
                    hrec[nh, 1] = keya[r]
                    hrec[nh, 2] = lasta[r]
                    hrec[nh, 3] = h0x[r]
                    hrec[nh, 4] = h1x[r]
                    hrec[nh, 5] = a4[r]
                    nh += 1
                hend[ci] = nh

        # ---------- the deferred cuts, through the contour tree ----------
        slotn = np.empty(npix, np.int32)  # root -> node index at the cut being emitted
        for ci in range(ncut):
            if not deferred[ci]:
                continue
            c = cuts[ci]
            nc = cend[ci] - cbeg[ci]
            nhc = hend[ci] - hbeg[ci]
            nn = nc + nhc
            if nn > cap:
                cap = 2 * nn
                nkey = np.empty(cap, np.int64)
                npar = np.empty(cap, np.int64)
                narea = np.empty(cap, np.int64)
                nbox = np.empty((cap, 4), np.int64)
            c0 = cbeg[ci]
            for i in range(nc):  # components: nodes 0..nc-1 (padded coordinates)
                rec = crec[c0 + i]
                slotn[rec[0]] = i
                nkey[i] = rec[1]
                narea[i] = rec[5]
                nbox[i, 0] = rec[3] - 1
                nbox[i, 1] = int((rec[1] + 0.5) * inv) - 1
                nbox[i, 2] = min(rec[4], W - 1)
                nbox[i, 3] = min(int((rec[2] + 0.5) * inv), H - 1)
                npar[i] = -1
            h0 = hbeg[ci]
            for i in range(nhc):  # holes: nodes nc..nn-1
                slotn[hrec[h0 + i, 0]] = nc + i
            for i in range(nhc):
                rec = hrec[h0 + i]
                k = nc + i
                nkey[k] = rec[1]
                narea[k] = rec[5]
                nbox[k, 0] = rec[3] - 2
                nbox[k, 1] = int((rec[1] + 0.5) * inv) - 2
                nbox[k, 2] = min(rec[4] + 1, W - 1)
                nbox[k, 3] = min(int((rec[2] + 0.5) * inv) + 1, H - 1)
                # parent: the component holding the pixel left of the hole's first pixel
                npar[k] = slotn[_find_at(pb, tb, rec[1] - 1, c, False)]
            for i in range(nc):
                kp = nkey[i]
                if kp % wp == 1:  # first pixel in column 0: top level
                    continue
                ra = _find_at(pa, ta, kp - 1, c, True)
                if btime[ra] > c:  # the pixel on its left lies in a hole
                    npar[i] = slotn[ra]
            ostart[ci] = nout
            out, nout = _emit(nkey, npar, narea, nbox, nn, True, out, nout, largest, ci)
            oend[ci] = nout
    return out[:nout], ostart, oend, largest, ndef


def sweep_fast(q: np.ndarray, taus: Sequence[float]) -> SweepResult:
    """Boxes at every τ of a quantized uint8 map, identical to ``sweep_reference``.

    Same boxes in the same order ('all') and the same box ('largest') at every τ. Each
    distinct integer cut is computed once and its arrays are shared between the τ that map
    to it (as the reference's cache does).
    """
    q = np.ascontiguousarray(q, dtype=np.uint8)
    if q.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {q.shape}")
    cuts = level_thresholds(int(q.max()), taus)
    if cuts.size == 0:
        return SweepResult({m: [] for m in MODES})
    # q > c is the same mask for every c <= -1 (all pixels) and every c >= 255 (none)
    eff = np.clip(cuts, -1, 255)
    present = np.zeros(257, np.bool_)
    present[eff + 1] = True
    uniq = np.flatnonzero(present) - 1
    index = np.cumsum(present) - 1  # cut c -> position in uniq, at index[c + 1]
    h, w = q.shape
    qp = np.full((h + 2, w + 2), -1, np.int16)  # padded copy for the neighbour masks
    qp[1:-1, 1:-1] = q
    all_boxes, start, end, largest, _ = _sweep_kernel(
        q, qp.ravel(), uniq, _G8N, _G8R, _G4N, _G4R, _DA8, _DA4, _DEUL
    )
    per_all = [all_boxes[s:e] for s, e in zip(start.tolist(), end.tolist())]
    per_largest = [largest[i: i + 1] for i in range(len(uniq))]
    inv = index[eff + 1].tolist()
    out: Dict[str, List[np.ndarray]] = {
        "all": [per_all[i] for i in inv],
        "largest": [per_largest[i] for i in inv],
    }
    assert tuple(out) == MODES
    return SweepResult(out)


SWEEPS["fast"] = sweep_fast
