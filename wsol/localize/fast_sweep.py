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
every rule was checked against OpenCV (tests/unit/localize/test_sweep.py):

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

Passes (over one counting-sorted stream of the pixels; only the distinct integer cuts are
visited, whatever the number of τ; every union-find is persistent -- no path compression,
each link stamped with its level -- so "which set held pixel p at cut c" can be asked
after the pass):

1. background, increasing value, 4-connected, from the lowest cut up, while the foreground
   is a single component (its component count is its Euler number plus its number of
   holes, both kept incrementally). Those cuts -- the bottom of a CAM, where the foreground
   is everything but a few background basins -- are emitted from this pass alone: the box
   from row/column maxima, then the holes.
2. foreground, decreasing value, 8-connected, for the cuts above: components with first
   pixel, box, A8 and Euler number. A cut whose Euler number says "no hole" -- nearly all of
   them on real CAMs -- is emitted at once (components by first pixel, areas = A8).
3. cuts with holes wait; their holes come from background passes: first by resuming pass 1
   while that is cheap, then fresh passes over windows holding the components with holes
   (each window counting-sorted into its own stream). Then they are emitted through the
   full contour tree.

Each pixel is visited about once by passes 1 and 2 together.
"""
from __future__ import annotations

import threading
from typing import Dict, List, Sequence, Tuple

import numpy as np
from numba import njit

from wsol.localize.boxes import MODES, CutBoxes, SweepResult, sweep_reference
from wsol.localize.maps import level_thresholds

# 8-neighbour ring, bit b of the mask: N, NE, E, SE, S, SW, W, NW
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
# the four 2x2 blocks around the centre pixel as (tl, tr, bl, br); -1 = the centre
_BLOCKS = ((7, 0, 6, -1), (0, 1, -1, 2), (6, -1, 5, 4), (-1, 2, 4, 3))
_NEVER = 1 << 30  # time stamp: has not happened
# Hot loops index arrays with _U(i) (np.uint64): numba then omits the negative-index
# wraparound code (a sign test and an add per access, plus the array lengths kept live),
# which otherwise spills the loop's registers; ~20% faster union-find passes. Only for
# indices that are never negative.
_U = np.uint64
# Stream order among equal values: rows top to bottom; in a row, columns x % _STRIDE == 0
# first, then 1, ... Neighbouring pixels are then rarely consecutive, which avoids
# store-to-load stalls on the same counters / parents (2x faster counting sort on CAMs).
_STRIDE = 8


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


# ---------------------------------------------------------------------------------------
# workspace: per image shape, reused across calls (fresh 200 KB buffers cost page faults)
# int32 rows of the foreground pass
_PB, _TB, _SZ, _KEY, _LAST, _X0, _X1, _A8, _EU, _ACT, _POS, _SLOT = range(12)
# int32 rows of the background pass
_PA, _TA, _SZA, _BT, _KEYA, _LASTA, _X0A, _X1A, _A4, _ACTA, _POSA, _SLOTA = range(12, 24)
_N32 = 24
# the sorted pixel stream packs, per pixel: padded index, foreground and background
# neighbour masks, padded column (sequential loads in the passes instead of random ones)
_PBITS = 28
_PMASK = (1 << _PBITS) - 1
_MBSH = 28
_MASH = 36  # = _MBSH + 8: both masks are packed by one shift of the uint16 mask pair
_XSH = 44
MAX_PIXELS = 1 << _PBITS  # padded size limit of the packed stream


@njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    """Root (no compression: both union-finds are persistent, see _find_at)."""
    while parent[_U(x)] != x:
        x = parent[_U(x)]
    return x


@njit(cache=True)
def _find_at(parent: np.ndarray, ptime: np.ndarray, x: int, t: int, up: bool) -> int:
    """Root of ``x`` as the union-find stood at level ``t``.

    Links are never compressed and each carries the level at which it was made;
    ``up``: levels increase during the pass (background), else they decrease (foreground).
    A pixel's link to the root it joined is always followed (its time is set to +-inf).
    """
    if up:
        while parent[_U(x)] != x and ptime[_U(x)] <= t:
            x = parent[_U(x)]
    else:
        while parent[_U(x)] != x and ptime[_U(x)] > t:
            x = parent[_U(x)]
    return x


@njit(cache=True, inline="always")
def _new_root(p: int, px: int, parent: np.ndarray, rank: np.ndarray, key: np.ndarray, last: np.ndarray,
              x0: np.ndarray, x1: np.ndarray) -> None:
    """Pixel ``p`` (column ``px``) starts a set of its own: its own root, rank 0, first and last
    pixel ``p``, x range ``px``."""
    u = _U(p)
    parent[u] = p
    rank[u] = 0
    key[u] = p
    last[u] = p
    x0[u] = px
    x1[u] = px


@njit(cache=True, inline="always")
def _fold(r: int, key: np.ndarray, last: np.ndarray, x0: np.ndarray, x1: np.ndarray, area: np.ndarray,
          c_key: int, c_last: int, c_x0: int, c_x1: int, c_acc: int) -> None:
    """Fold the running statistics kept in registers for root ``r`` into its arrays: first and
    last pixel, x range, and the area (the low 32 bits of ``c_acc``; the caller takes the
    Euler half). Inlined: the passes call it where they switch roots."""
    u = _U(r)
    key[u] = min(key[u], c_key)
    last[u] = max(last[u], c_last)
    x0[u] = min(x0[u], c_x0)
    x1[u] = max(x1[u], c_x1)
    area[u] += c_acc & 0xFFFFFFFF


@njit(cache=True, inline="always")
def _absorb(r: int, r2: int, key: np.ndarray, last: np.ndarray, x0: np.ndarray, x1: np.ndarray,
            area: np.ndarray) -> None:
    """Root ``r`` takes over root ``r2``'s first/last pixel, x range and area (a merge)."""
    u, u2 = _U(r), _U(r2)
    key[u] = min(key[u], key[u2])
    last[u] = max(last[u], last[u2])
    x0[u] = min(x0[u], x0[u2])
    x1[u] = max(x1[u], x1[u2])
    area[u] += area[u2]


@njit(cache=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` (2-D) or a copy with room for at least ``n`` rows."""
    if n <= a.shape[0]:
        return a
    b = np.empty((max(n, 2 * a.shape[0]), a.shape[1]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _pad(q2: np.ndarray, qp: np.ndarray) -> None:
    """Write ``q2`` padded by a ring of -1 into the flat int16 array ``qp``."""
    H, W = q2.shape
    wp = W + 2
    for x in range(wp):
        qp[x] = -1
        qp[(H + 1) * wp + x] = -1
    for y in range(H):
        b = (y + 1) * wp
        qp[b] = -1
        qp[b + W + 1] = -1
        for x in range(W):
            qp[b + 1 + x] = q2[y, x]


@njit(cache=True)
def _masks(qp: np.ndarray, wp: int, descending: bool, tie_w: np.ndarray, tie_e: np.ndarray, mab: np.ndarray) -> None:
    """8-neighbour bit mask (bit order: _RING) of the neighbours already in the set when each
    pixel of the padded map ``qp`` (padding -1, row width ``wp``) joins it; written to ``mab``
    (uint16: low byte for the foreground, high byte for the background, as packed in the
    stream; the other byte is 0).

    Pixels join by value (decreasing for the foreground, increasing for the background);
    equal values join in stream order (see :data:`_STRIDE`): rows top to bottom, and in a row
    by column class then column. So a neighbour is in iff its value comes strictly earlier,
    or is equal and it precedes: N, NE, NW always, S, SE, SW never, W when ``tie_w[x]``, E
    when ``tie_e[x]`` (indexed by padded column). Padding is never in the foreground and
    always in the background. Unsigned indices let LLVM vectorize the loop (numba's
    negative-index wraparound check on signed indices prevents it).
    """
    h = qp.shape[0] // wp - 2
    w = np.uint64(wp)
    one = np.uint64(1)
    for y in range(1, h + 1):
        base = np.uint64(y * wp)
        for xp in range(one, w - one):
            p = base + xp
            c = qp[p]
            if descending:
                mab[p] = np.uint16(
                    np.uint8(qp[p - w] >= c)
                    | (np.uint8(qp[p - w + one] >= c) << np.uint8(1))
                    | (np.uint8((qp[p + one] > c) | ((qp[p + one] == c) & (tie_e[xp] != 0))) << np.uint8(2))
                    | (np.uint8(qp[p + w + one] > c) << np.uint8(3))
                    | (np.uint8(qp[p + w] > c) << np.uint8(4))
                    | (np.uint8(qp[p + w - one] > c) << np.uint8(5))
                    | (np.uint8((qp[p - one] > c) | ((qp[p - one] == c) & (tie_w[xp] != 0))) << np.uint8(6))
                    | (np.uint8(qp[p - w - one] >= c) << np.uint8(7))
                )
            else:
                mab[p] = np.uint16(
                    np.uint8(qp[p - w] <= c)
                    | (np.uint8(qp[p - w + one] <= c) << np.uint8(1))
                    | (np.uint8((qp[p + one] < c) | ((qp[p + one] == c) & (tie_e[xp] != 0))) << np.uint8(2))
                    | (np.uint8(qp[p + w + one] < c) << np.uint8(3))
                    | (np.uint8(qp[p + w] < c) << np.uint8(4))
                    | (np.uint8(qp[p + w - one] < c) << np.uint8(5))
                    | (np.uint8((qp[p - one] < c) | ((qp[p - one] == c) & (tie_w[xp] != 0))) << np.uint8(6))
                    | (np.uint8(qp[p - w - one] <= c) << np.uint8(7))
                ) << np.uint16(8)


@njit(cache=True)
def _masks_both(qp: np.ndarray, wp: int, tie_w: np.ndarray, tie_e: np.ndarray, mab: np.ndarray) -> None:
    """:func:`_masks` for the foreground (low byte) and the background (high byte) in one sweep."""
    h = qp.shape[0] // wp - 2
    w = np.uint64(wp)
    one = np.uint64(1)
    for y in range(1, h + 1):
        base = np.uint64(y * wp)
        for xp in range(one, w - one):
            p = base + xp
            c = qp[p]
            n0 = qp[p - w]
            n1 = qp[p - w + one]
            n2 = qp[p + one]
            n3 = qp[p + w + one]
            n4 = qp[p + w]
            n5 = qp[p + w - one]
            n6 = qp[p - one]
            n7 = qp[p - w - one]
            te = tie_e[xp] != 0
            tw = tie_w[xp] != 0
            mb = (
                np.uint8(n0 >= c)
                | (np.uint8(n1 >= c) << np.uint8(1))
                | (np.uint8((n2 > c) | ((n2 == c) & te)) << np.uint8(2))
                | (np.uint8(n3 > c) << np.uint8(3))
                | (np.uint8(n4 > c) << np.uint8(4))
                | (np.uint8(n5 > c) << np.uint8(5))
                | (np.uint8((n6 > c) | ((n6 == c) & tw)) << np.uint8(6))
                | (np.uint8(n7 >= c) << np.uint8(7))
            )
            ma = (
                np.uint8(n0 <= c)
                | (np.uint8(n1 <= c) << np.uint8(1))
                | (np.uint8((n2 < c) | ((n2 == c) & te)) << np.uint8(2))
                | (np.uint8(n3 < c) << np.uint8(3))
                | (np.uint8(n4 < c) << np.uint8(4))
                | (np.uint8(n5 < c) << np.uint8(5))
                | (np.uint8((n6 < c) | ((n6 == c) & tw)) << np.uint8(6))
                | (np.uint8(n7 <= c) << np.uint8(7))
            )
            mab[p] = np.uint16(mb) | (np.uint16(ma) << np.uint16(8))


@njit(cache=True)
def _ties(w: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per padded column of a map ``w`` wide: does the W (resp. E) neighbour come earlier in
    the stream among equal values? Column x is visited in class ``x % _STRIDE``, then order."""
    tie_w = np.zeros(w + 2, np.uint8)
    tie_e = np.zeros(w + 2, np.uint8)
    for x in range(w):
        tie_w[x + 1] = x % _STRIDE != 0
        tie_e[x + 1] = x % _STRIDE == _STRIDE - 1
    return tie_w, tie_e


@njit(cache=True)
def _counting_sort(q2: np.ndarray, wp: int, mab: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Sort the pixels of the C-contiguous ``q2`` by value (ties in stream order, see
    :data:`_STRIDE`) into
    ``order`` (int64, packed: padded index | mb << _MBSH | ma << _MASH | padded x << _XSH,
    both masks from ``mab``: one uint16 load per pixel);
    return the level offsets ``start[v]:start[v + 1]``. ``q2`` may be a window of the map
    starting at a column multiple of :data:`_STRIDE` (same column classes, same tie order)."""
    H, W = q2.shape
    h4 = np.zeros((4, 257), np.int64)  # four histograms: no store-to-load chains on runs
    for y in range(H):
        x = 0
        while x + 4 <= W:
            h4[0, np.int64(q2[y, x]) + 1] += 1
            h4[1, np.int64(q2[y, x + 1]) + 1] += 1
            h4[2, np.int64(q2[y, x + 2]) + 1] += 1
            h4[3, np.int64(q2[y, x + 3]) + 1] += 1
            x += 4
        while x < W:
            h4[0, np.int64(q2[y, x]) + 1] += 1
            x += 1
    start = h4[0] + h4[1] + h4[2] + h4[3]
    for v in range(256):
        start[v + 1] += start[v]
    nxt = start[:256].copy()
    qf = q2.ravel()
    for y in range(H):  # unsigned indices: no wraparound checks in this hot loop
        base = (y + 1) * wp + 1
        row = y * W
        for cls in range(_STRIDE):
            for x in range(cls, W, _STRIDE):  # constant start: 1.4x faster than a computed one
                v = np.uint64(qf[np.uint64(row + x)])
                j = nxt[v]
                p = base + x
                pu = np.uint64(p)
                order[np.uint64(j)] = (
                    p
                    | (np.int64(mab[pu]) << _MBSH)  # ma lands at _MASH = _MBSH + 8
                    | (np.int64(x + 1) << _XSH)
                )
                nxt[v] = j + 1
    return start


@njit(cache=True)
def _emit(
    nkey: np.ndarray,
    npar: np.ndarray,
    narea: np.ndarray,
    nbox: np.ndarray,
    nn: int,
    tree: bool,
    scr: np.ndarray,
    out: np.ndarray,
    nout: int,
    largest: np.ndarray,
    ci: int,
) -> Tuple[np.ndarray, int]:
    """Write one cut's ``nn`` contours in OpenCV's order to ``out``, its 'largest' box to
    ``largest[ci]``; return ``out`` (maybe regrown) and the new row count.

    Nodes are sorted by first pixel, decreasing; with ``tree`` they are walked in pre-order
    of the contour tree (``npar``: parent node or -1) and each contour's area gains its
    children's. The largest is the first node of maximal area in that order (Python's max).
    ``scr``: int64 scratch, 6 rows of at least ``nn + 1``.
    """
    if nn == 0:
        out = _grow(out, nout + 1)
        out[nout, :] = 0
        largest[ci, :] = 0
        return out, nout + 1
    srt = scr[0]
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
    pre = srt
    if tree:
        chead = scr[1]
        ctail = scr[2]
        cnext = scr[3]
        pre = scr[4]
        stack = scr[5]
        for i in range(nn + 1):
            chead[i] = -1
        for i in range(nn):  # children lists keep the decreasing-key order
            j = srt[i]
            pn = npar[j] if npar[j] >= 0 else nn
            cnext[j] = -1
            if chead[pn] < 0:
                chead[pn] = j
            else:
                cnext[ctail[pn]] = j
            ctail[pn] = j
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
def _bg_init(
    qs: np.ndarray, whole: bool, tie_w: np.ndarray, tie_e: np.ndarray, ws32: np.ndarray, wsm: np.ndarray,
    ws16: np.ndarray,
) -> None:
    """Start a background pass over the window ``qs``: neighbour masks in ``wsm`` (unless
    ``whole``: the map's own, packed in the sorted stream; a window's are packed into its
    own stream by :func:`_counting_sort`), padding ring.

    The ring is one background set (root 0) touching the border from the start; pixel
    links are always followed by :func:`_find_at` (time -1).
    """
    h, w = qs.shape
    wps = w + 2
    nps = (h + 2) * wps
    if not whole:
        qpa = ws16[1, :nps]
        _pad(qs, qpa)
        _masks(qpa, wps, np.bool_(False), tie_w, tie_e, wsm[:nps])
    pa = ws32[_PA, :nps]
    ws32[_TA, :nps] = -1
    for x in range(wps):
        pa[x] = 0
        pa[nps - wps + x] = 0
    for y in range(1, h + 1):
        pa[y * wps] = 0
        pa[y * wps + wps - 1] = 0
    ws32[_SZA, 0] = 1 << 20  # rank: the ring stays a root
    ws32[_BT, 0] = -1


@njit(cache=True)
def _bg_run(
    h: int,
    w: int,
    ry0: int,
    rx0: int,
    wp: int,
    order: np.ndarray,
    start: np.ndarray,
    slot: np.ndarray,
    wanted: np.ndarray,
    v_lo: int,
    v_hi: int,
    low: bool,
    st: np.ndarray,
    hrec: np.ndarray,
    hbeg: np.ndarray,
    hend: np.ndarray,
    ws32: np.ndarray,
    g4n: np.ndarray,
    g4r: np.ndarray,
    da4: np.ndarray,
    deul: np.ndarray,
) -> Tuple[np.ndarray, int]:
    """Background pass over levels ``v_lo..v_hi`` of an ``h`` x ``w`` window (resumable).

    Pixels by increasing value, 4-connected union-find, persistent (links stamped in
    ``ws32[_TA]``); a set is a hole while it does not touch the window's border.
    ``order``/``start``: the window's packed pixel stream by value (:func:`_counting_sort`;
    the map's own stream when the window is the whole map), in the window's padded
    coordinates (row width ``w + 2``); the window's padded offset in the map (row width
    ``wp``) is ``ry0, rx0``. Holes are recorded at the cuts flagged in ``wanted``
    (``slot``: cut -> index): records ``(root, first, last, x0, x1, A4)`` in full padded
    coordinates appended to ``hrec``, cut i's range ``hbeg[i]:hend[i]``. ``st`` carries
    ``(#holes, Euler number, #records)`` between calls.

    ``low`` (window = whole map): record every needed cut while the foreground is a single
    component (or empty) -- its number of components is its Euler number (quarter units in
    ``st[1]``, kept from ``deul`` as pixels leave the foreground) plus its number of holes --
    and stop at the first cut with more; its index is returned (-1 if none).
    """
    wps = w + 2
    invs = 1.0 / wps
    pa = ws32[_PA]
    ta = ws32[_TA]
    rka = ws32[_SZA]
    bt = ws32[_BT]
    keya = ws32[_KEYA]
    lasta = ws32[_LASTA]
    h0x = ws32[_X0A]
    h1x = ws32[_X1A]
    a4 = ws32[_A4]
    acta = ws32[_ACTA]
    posa = ws32[_POSA]
    offs = np.array([-wps, -wps + 1, 1, wps + 1, wps, wps - 1, -1, -wps - 1], np.int64)
    off0 = np.empty(256, np.int64)
    # A4 change + (Euler change of the foreground when the pixel leaves it) << 32: one load
    # and one add per pixel; the Euler number is taken from the sums at flushes (as in the
    # foreground pass). The pixel's foreground neighbours are the complement of m.
    pka = np.empty(256, np.int64)
    for m in range(256):
        off0[m] = offs[g4r[m, 0]]
        pka[m] = np.int64(da4[m]) - (np.int64(deul[255 - m]) << 32)
    nacta = st[0]
    eul = st[1]
    nh = st[2]
    stop = -1
    cr = -1
    c_key, c_last, c_x0, c_x1, c_a4 = _NEVER, -1, _NEVER, -1, 0
    for v in range(v_lo, v_hi + 1):
        for j in range(start[_U(v)], start[_U(v + 1)]):
            e = order[_U(j)]
            p = e & _PMASK
            px = e >> _XSH
            m = (e >> _MASH) & 255
            ng = g4n[_U(m)]
            t = pka[_U(m)]
            if ng == 0:  # a new hole
                _new_root(p, px, pa, rka, keya, lasta, h0x, h1x)
                a4[_U(p)] = t & 0xFFFFFFFF
                eul += t >> 32
                bt[_U(p)] = _NEVER
                acta[_U(nacta)] = p
                posa[_U(p)] = nacta
                nacta += 1
                continue
            r = _find(pa, p + off0[_U(m)])
            for g in range(1, ng):
                r2 = _find(pa, p + offs[g4r[_U(m), g]])
                if r2 == r:
                    continue
                if cr >= 0:
                    _fold(cr, keya, lasta, h0x, h1x, a4, c_key, c_last, c_x0, c_x1, c_a4)
                    eul += c_a4 >> 32
                    cr = -1
                    c_key, c_last, c_x0, c_x1, c_a4 = _NEVER, -1, _NEVER, -1, 0
                if rka[_U(r)] < rka[_U(r2)]:
                    r, r2 = r2, r
                elif rka[_U(r)] == rka[_U(r2)]:
                    rka[_U(r)] += 1
                pa[_U(r2)] = r
                ta[_U(r2)] = v
                _absorb(r, r2, keya, lasta, h0x, h1x, a4)
                bd1 = bt[_U(r)] <= v
                bd2 = bt[_U(r2)] <= v
                if not bd2:  # r2 is no longer a root: it leaves the hole list
                    i = posa[_U(r2)]
                    nacta -= 1
                    last = acta[_U(nacta)]
                    acta[_U(i)] = last
                    posa[_U(last)] = i
                if bd2 and not bd1:  # r now touches the border
                    bt[_U(r)] = v
                    i = posa[_U(r)]
                    nacta -= 1
                    last = acta[_U(nacta)]
                    acta[_U(i)] = last
                    posa[_U(last)] = i
            if r == 0:  # joins the outside (root 0, the ring): only holes need statistics
                pa[_U(p)] = 0
                eul += t >> 32
                continue
            if r != cr:
                if cr >= 0:
                    _fold(cr, keya, lasta, h0x, h1x, a4, c_key, c_last, c_x0, c_x1, c_a4)
                    eul += c_a4 >> 32
                    c_key, c_last, c_x0, c_x1, c_a4 = _NEVER, -1, _NEVER, -1, 0
                cr = r
            pa[_U(p)] = r
            c_key = min(c_key, p)
            c_last = max(c_last, p)
            c_x0 = min(c_x0, px)
            c_x1 = max(c_x1, px)
            c_a4 += t
        ci = slot[_U(v + 1)]
        if ci >= 0 and (low or wanted[_U(ci)]):
            if cr >= 0:
                _fold(cr, keya, lasta, h0x, h1x, a4, c_key, c_last, c_x0, c_x1, c_a4)
                eul += c_a4 >> 32
                cr = -1
                c_key, c_last, c_x0, c_x1, c_a4 = _NEVER, -1, _NEVER, -1, 0
            if low and eul // 4 + nacta > 1:  # more than one foreground component
                stop = ci
                break
            hbeg[ci] = nh
            hrec = _grow(hrec, nh + nacta)
            for i in range(nacta):
                r = acta[_U(i)]
                k = keya[_U(r)]
                ky = int((k + 0.5) * invs)
                lt = lasta[_U(r)]
                lyy = int((lt + 0.5) * invs)
                hrec[nh, 0] = r
                hrec[nh, 1] = (ky + ry0 - 1) * wp + (k - ky * wps) + rx0 - 1
                hrec[nh, 2] = (lyy + ry0 - 1) * wp + (lt - lyy * wps) + rx0 - 1
                hrec[nh, 3] = h0x[_U(r)] + rx0 - 1
                hrec[nh, 4] = h1x[_U(r)] + rx0 - 1
                hrec[nh, 5] = a4[_U(r)]
                nh += 1
            hend[ci] = nh
    if cr >= 0:
        _fold(cr, keya, lasta, h0x, h1x, a4, c_key, c_last, c_x0, c_x1, c_a4)
        eul += c_a4 >> 32
    st[0] = nacta
    st[1] = eul
    st[2] = nh
    return hrec, stop


@njit(cache=True)
def _bg_record(
    ci: int,
    ry0: int,
    rx0: int,
    wps: int,
    wp: int,
    st: np.ndarray,
    hrec: np.ndarray,
    hbeg: np.ndarray,
    hend: np.ndarray,
    ws32: np.ndarray,
) -> np.ndarray:
    """Record the current holes of a background pass (see :func:`_bg_run`) as cut ``ci``'s."""
    invs = 1.0 / wps
    nacta = st[0]
    nh = st[2]
    acta = ws32[_ACTA]
    hbeg[ci] = nh
    hrec = _grow(hrec, nh + nacta)
    for i in range(nacta):
        r = acta[i]
        k = ws32[_KEYA, r]
        ky = int((k + 0.5) * invs)
        lt = ws32[_LASTA, r]
        lyy = int((lt + 0.5) * invs)
        hrec[nh, 0] = r
        hrec[nh, 1] = (ky + ry0 - 1) * wp + (k - ky * wps) + rx0 - 1
        hrec[nh, 2] = (lyy + ry0 - 1) * wp + (lt - lyy * wps) + rx0 - 1
        hrec[nh, 3] = ws32[_X0A, r] + rx0 - 1
        hrec[nh, 4] = ws32[_X1A, r] + rx0 - 1
        hrec[nh, 5] = ws32[_A4, r]
        nh += 1
    hend[ci] = nh
    st[2] = nh
    return hrec


@njit(cache=True)
def _sweep_kernel(
    q2: np.ndarray,
    raw_cuts: np.ndarray,
    ws64: np.ndarray,
    ws32: np.ndarray,
    wsm: np.ndarray,
    ws16: np.ndarray,
    g8n: np.ndarray,
    g8r: np.ndarray,
    g4n: np.ndarray,
    g4r: np.ndarray,
    da8: np.ndarray,
    da4: np.ndarray,
    deul: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Boxes of ``q2 > c`` for every integer cut c in ``raw_cuts`` (any length, any order).

    Returns ``(all_boxes [n, 4] int32, start [m], end [m], largest [m, 4] int32, inv, n_tree)``
    for the m distinct cuts: distinct cut i's 'all' boxes are ``all_boxes[start[i]:end[i]]``;
    ``inv[k]`` is the distinct cut of ``raw_cuts[k]``; ``n_tree`` counts the cuts with holes
    (emitted through the full contour tree).
    """
    H, W = q2.shape
    wp = W + 2
    npix = (H + 2) * wp
    inv_wp = 1.0 / wp  # row of padded index p: int((p + 0.5) * inv_wp), exact at any size
    # plain (non-literal) constants for calls: numba compiles one specialization per literal
    no = np.bool_(False)
    yes = np.bool_(True)
    i0 = H - H  # run-time zero: not a literal
    i1 = i0 + 1

    # distinct cuts; q > c is the same mask for all c <= -1 (all pixels) and c >= 255 (none)
    present = np.zeros(257, np.bool_)
    for k in range(raw_cuts.shape[0]):
        present[min(max(raw_cuts[k], -1), 255) + 1] = True
    slot = np.full(257, -1, np.int64)  # cut c -> distinct index, at slot[c + 1]
    ncut = 0
    for c in range(257):
        if present[c]:
            slot[c] = ncut
            ncut += 1
    cuts = np.empty(ncut, np.int64)
    for c in range(257):
        if present[c]:
            cuts[slot[c]] = c - 1
    inv = np.empty(raw_cuts.shape[0], np.int64)
    for k in range(raw_cuts.shape[0]):
        inv[k] = slot[min(max(raw_cuts[k], -1), 255) + 1]
    cmin = cuts[0]

    offs = np.array([-wp, -wp + 1, 1, wp + 1, wp, wp - 1, -1, -wp - 1], np.int64)
    off0 = np.empty(256, np.int64)  # offset of the first neighbour group: one load less per pixel
    pk = np.empty(256, np.int64)  # A8 change + (Euler change << 32): one load, one add per pixel
    for m in range(256):
        off0[m] = offs[g8r[m, 0]]
        pk[m] = np.int64(da8[m]) + (np.int64(deul[m]) << 32)
    qp = ws16[0, :npix]
    mab = wsm[:npix]
    pb = ws32[_PB, :npix]
    tb = ws32[_TB, :npix]
    rkb = ws32[_SZ, :npix]  # union-by-rank ranks (roots only)
    keyb = ws32[_KEY, :npix]
    lastb = ws32[_LAST, :npix]
    b0x = ws32[_X0, :npix]
    b1x = ws32[_X1, :npix]
    a8 = ws32[_A8, :npix]
    eub = ws32[_EU, :npix]
    actb = ws32[_ACT, :npix]
    posb = ws32[_POS, :npix]
    order = ws64[0, :H * W]
    slotn = ws32[_SLOT, :npix]
    _pad(q2, qp)
    tie_w, tie_e = _ties(W)
    _masks_both(qp, wp, tie_w, tie_e, mab)
    start = _counting_sort(q2, wp, mab, order)
    tb[:] = _NEVER  # a pixel's link to its root is always followed

    out = np.empty((max(16, 2 * ncut), 4), np.int32)
    nout = i0
    ostart = np.zeros(ncut, np.int64)
    oend = np.zeros(ncut, np.int64)
    largest = np.zeros((ncut, 4), np.int32)
    # cuts with holes wait for the background pass; their components are kept here, with
    # the window (padded coordinates) holding the components that have holes
    deferred = np.zeros(ncut, np.bool_)
    ndef = 0
    crec = np.empty((16, 6), np.int64)  # root, first, last, x0, x1, A8
    ncrec = 0
    cbeg = np.zeros(ncut, np.int64)  # cut i's components: crec[cbeg[i]:cend[i]]
    cend = np.zeros(ncut, np.int64)
    win = np.zeros((ncut, 4), np.int64)  # y0, y1, x0, x1
    cap = 16
    nkey = np.empty(cap, np.int64)
    npar = np.empty(cap, np.int64)
    narea = np.empty(cap, np.int64)
    nbox = np.empty((cap, 4), np.int64)
    scr = np.empty((6, cap + 1), np.int64)

    # ---------- low cuts from the background pass alone ----------
    # Near the bottom of a CAM the foreground is one big component around a few small
    # background basins. While it stays one component, its contours are its box (row and
    # column maxima) and its holes (children, by decreasing first pixel); the background
    # pass gives both, so the foreground pass only has to cover the cuts above. Every pixel
    # is then visited once. Worth it only when few pixels lie at or below the lowest cut.
    first = 0  # cuts[first:] are left to the foreground pass
    low = start[cmin + 1] * 8 <= H * W
    st = np.zeros(3, np.int64)  # background pass state: #holes, Euler number, #records
    hrec = np.empty((16, 6), np.int64)
    hbeg = np.zeros(ncut, np.int64)
    hend = np.zeros(ncut, np.int64)
    if low:
        _bg_init(q2, yes, tie_w, tie_e, ws32, wsm, ws16)
        st[1] = 4  # all pixels in the foreground: one component, no hole
        if cmin == -1:
            hbeg[0] = 0
            hend[0] = 0
        hrec, first = _bg_run(
            H, W, i1, i1, wp, order, start, slot, deferred, i0, np.int64(255), yes, st, hrec, hbeg, hend,
            ws32, g4n, g4r, da4, deul,
        )
        if first < 0:
            first = ncut
        # first/last row and column holding a value >= v, for every v
        fy = np.full(258, _NEVER, np.int64)
        ly = np.full(258, -1, np.int64)
        fx = np.full(258, _NEVER, np.int64)
        lx = np.full(258, -1, np.int64)
        colmax = q2[0].copy()
        for y in range(H):
            rowmax = q2[y, 0]
            for x in range(W):  # vectorizable maxima
                rowmax = max(rowmax, q2[y, x])
                colmax[x] = max(colmax[x], q2[y, x])
            fy[rowmax] = min(fy[rowmax], y)
            ly[rowmax] = y
        for x in range(W):
            fx[colmax[x]] = min(fx[colmax[x]], x)
            lx[colmax[x]] = x
        for v in range(255, -1, -1):
            fy[v] = min(fy[v], fy[v + 1])
            ly[v] = max(ly[v], ly[v + 1])
            fx[v] = min(fx[v], fx[v + 1])
            lx[v] = max(lx[v], lx[v + 1])
        for k in range(first):
            c = cuts[k]
            nhc = hend[k] - hbeg[k]
            ostart[k] = nout
            if ly[c + 1] < 0:  # no foreground
                out, nout = _emit(nkey, npar, narea, nbox, i0, no, scr, out, nout, largest, k)
                oend[k] = nout
                continue
            nn = 1 + nhc
            if nn > cap:
                cap = 2 * nn
                nkey = np.empty(cap, np.int64)
                npar = np.empty(cap, np.int64)
                narea = np.empty(cap, np.int64)
                nbox = np.empty((cap, 4), np.int64)
                scr = np.empty((6, cap + 1), np.int64)
            nkey[0] = -1
            npar[0] = -1
            narea[0] = 0  # gains its holes' areas: never below any of them, and first
            nbox[0, 0] = fx[c + 1]
            nbox[0, 1] = fy[c + 1]
            nbox[0, 2] = min(lx[c + 1] + 1, W - 1)
            nbox[0, 3] = min(ly[c + 1] + 1, H - 1)
            h0 = hbeg[k]
            for i in range(nhc):
                hk = hrec[h0 + i, 1]
                nkey[1 + i] = hk
                npar[1 + i] = 0
                narea[1 + i] = hrec[h0 + i, 5]
                nbox[1 + i, 0] = hrec[h0 + i, 3] - 2
                nbox[1 + i, 1] = int((hk + 0.5) * inv_wp) - 2
                nbox[1 + i, 2] = min(hrec[h0 + i, 4] + 1, W - 1)
                nbox[1 + i, 3] = min(int((hrec[h0 + i, 2] + 0.5) * inv_wp) + 1, H - 1)
            out, nout = _emit(nkey, npar, narea, nbox, nn, nhc > 0, scr, out, nout, largest, k)
            oend[k] = nout

    # ---------- foreground pass: 8-connected, decreasing values ----------
    # per root: rank, first and last pixel (rows), x range, A8 (half pixels), Euler number
    # (quarter units); the root the last pixels joined keeps its updates in registers
    nactb = i0
    tot = np.int64(0)  # sum of pk over the mask (Euler number in the high half); takes c_pk at flushes
    cr = -1
    c_key = _NEVER
    c_last = -1
    c_x0 = _NEVER
    c_x1 = -1
    c_pk = np.int64(0)
    for step in range(257):
        v = 255 - step  # the mask is q > v here: emit cut v, then add level v
        ci = slot[_U(v + 1)]
        if ci >= first:
            if cr >= 0:
                _fold(cr, keyb, lastb, b0x, b1x, a8, c_key, c_last, c_x0, c_x1, c_pk)
                eub[_U(cr)] += c_pk >> 32
                tot += c_pk
                cr = -1
                c_key, c_last, c_x0, c_x1, c_pk = _NEVER, -1, _NEVER, -1, 0
            if nactb - (tot >> 32) // 4 > 0:  # #holes = #components - Euler number
                deferred[ci] = True
                ndef += 1
                cbeg[ci] = ncrec
                crec = _grow(crec, ncrec + nactb)
                wy0 = _NEVER
                wy1 = -1
                wx0 = _NEVER
                wx1 = -1
                for i in range(nactb):
                    r = actb[_U(i)]
                    crec[ncrec, 0] = r
                    crec[ncrec, 1] = keyb[_U(r)]
                    crec[ncrec, 2] = lastb[_U(r)]
                    crec[ncrec, 3] = b0x[_U(r)]
                    crec[ncrec, 4] = b1x[_U(r)]
                    crec[ncrec, 5] = a8[_U(r)]
                    ncrec += 1
                    if eub[_U(r)] < 4:  # this component has holes
                        wy0 = min(wy0, int((keyb[_U(r)] + 0.5) * inv_wp))
                        wy1 = max(wy1, int((lastb[_U(r)] + 0.5) * inv_wp))
                        wx0 = min(wx0, b0x[_U(r)])
                        wx1 = max(wx1, b1x[_U(r)])
                cend[ci] = ncrec
                win[ci, 0] = wy0
                win[ci, 1] = wy1
                win[ci, 2] = wx0
                win[ci, 3] = wx1
            elif nactb == 1:  # the common case: one component, nothing to order
                r = actb[0]
                x0 = b0x[_U(r)] - 1
                y0 = int((keyb[_U(r)] + 0.5) * inv_wp) - 1
                x1 = min(b1x[_U(r)], W - 1)
                y1 = min(int((lastb[_U(r)] + 0.5) * inv_wp), H - 1)
                out = _grow(out, nout + 1)
                out[nout, 0] = x0
                out[nout, 1] = y0
                out[nout, 2] = x1
                out[nout, 3] = y1
                largest[ci, 0] = x0
                largest[ci, 1] = y0
                largest[ci, 2] = x1
                largest[ci, 3] = y1
                ostart[ci] = nout
                nout += 1
                oend[ci] = nout
            else:
                if nactb > cap:
                    cap = 2 * nactb
                    nkey = np.empty(cap, np.int64)
                    npar = np.empty(cap, np.int64)
                    narea = np.empty(cap, np.int64)
                    nbox = np.empty((cap, 4), np.int64)
                    scr = np.empty((6, cap + 1), np.int64)
                for i in range(nactb):
                    r = actb[_U(i)]
                    nkey[i] = keyb[_U(r)]
                    narea[i] = a8[_U(r)]
                    nbox[i, 0] = b0x[_U(r)] - 1
                    nbox[i, 1] = int((keyb[_U(r)] + 0.5) * inv_wp) - 1
                    nbox[i, 2] = min(b1x[_U(r)], W - 1)
                    nbox[i, 3] = min(int((lastb[_U(r)] + 0.5) * inv_wp), H - 1)
                ostart[ci] = nout
                out, nout = _emit(nkey, npar, narea, nbox, nactb, no, scr, out, nout, largest, ci)
                oend[ci] = nout
        if first >= ncut or v <= cuts[first]:
            break
        for j in range(start[_U(v)], start[_U(v + 1)]):
            e = order[_U(j)]
            p = e & _PMASK
            m = (e >> _MBSH) & 255
            px = e >> _XSH
            ng = g8n[_U(m)]
            t = pk[_U(m)]
            if ng == 0:  # a new component
                _new_root(p, px, pb, rkb, keyb, lastb, b0x, b1x)
                a8[_U(p)] = 0
                eub[_U(p)] = t >> 32
                tot += t
                actb[_U(nactb)] = p
                posb[_U(p)] = nactb
                nactb += 1
                continue
            r = _find(pb, p + off0[_U(m)])
            for g in range(1, ng):
                r2 = _find(pb, p + offs[g8r[_U(m), g]])
                if r2 == r:
                    continue
                if cr >= 0:
                    _fold(cr, keyb, lastb, b0x, b1x, a8, c_key, c_last, c_x0, c_x1, c_pk)
                    eub[_U(cr)] += c_pk >> 32
                    tot += c_pk
                    cr = -1
                    c_key, c_last, c_x0, c_x1, c_pk = _NEVER, -1, _NEVER, -1, 0
                if rkb[_U(r)] < rkb[_U(r2)]:
                    r, r2 = r2, r
                elif rkb[_U(r)] == rkb[_U(r2)]:
                    rkb[_U(r)] += 1
                pb[_U(r2)] = r
                tb[_U(r2)] = v
                _absorb(r, r2, keyb, lastb, b0x, b1x, a8)
                eub[_U(r)] += eub[_U(r2)]
                i = posb[_U(r2)]
                nactb -= 1
                last = actb[_U(nactb)]
                actb[_U(i)] = last
                posb[_U(last)] = i
            if r != cr:
                if cr >= 0:
                    _fold(cr, keyb, lastb, b0x, b1x, a8, c_key, c_last, c_x0, c_x1, c_pk)
                    eub[_U(cr)] += c_pk >> 32
                    tot += c_pk
                    c_key, c_last, c_x0, c_x1, c_pk = _NEVER, -1, _NEVER, -1, 0
                cr = r
            pb[_U(p)] = r
            c_key = min(c_key, p)
            c_last = max(c_last, p)
            c_x0 = min(c_x0, px)
            c_x1 = max(c_x1, px)
            c_pk += t

    if ndef > 0:
        # ---------- holes at the deferred cuts ----------
        # Deferred cuts go, in increasing order, to background passes. The first group may
        # resume the low-cut pass (whole map, state kept) while that costs fewer pixel visits
        # than a fresh pass; the rest are grouped into fresh passes over the union of their
        # cuts' windows (the boxes of their components with holes) and the levels up to their
        # highest cut: a group grows while one pass stays cheaper than two.
        pa = ws32[_PA]
        ta = ws32[_TA]
        bt = ws32[_BT]
        slota = ws32[_SLOTA]
        over = 0.05 * H * W + 256.0  # set-up of a fresh pass, in pixel visits
        ingroup = np.zeros(ncut, np.bool_)
        ci = first
        resume = low and first < ncut
        while ci < ncut:
            if not deferred[ci]:
                ci += 1
                continue
            for k in range(ncut):
                ingroup[k] = False
            if resume:
                # levels cuts[first] and below are done; extend while resuming is cheaper
                at = cuts[first]
                glast = -1
                for k in range(ci, ncut):
                    if not deferred[k]:
                        continue
                    fr = (win[k, 1] - win[k, 0] + 1) * (win[k, 3] - win[k, 2] + 1) / (H * W)
                    if start[cuts[k] + 1] - start[at + 1] > start[cuts[k] + 1] * fr + over:
                        break
                    ingroup[k] = True
                    glast = k
                    at = cuts[k]
                resume = False
                if glast >= 0:
                    gy0 = 1
                    gy1 = H
                    gx0 = 1
                    gx1 = W
                    if ingroup[first]:  # the pass stopped right after this cut's level
                        hrec = _bg_record(first, i1, i1, wp, wp, st, hrec, hbeg, hend, ws32)
                    hrec, _ = _bg_run(
                        H, W, i1, i1, wp, order, start, slot, ingroup, cuts[first] + 1,
                        cuts[glast], no, st, hrec, hbeg, hend, ws32, g4n, g4r, da4, deul,
                    )
                    gfirst = ci
                else:
                    continue
            else:
                gy0 = win[ci, 0]
                gy1 = win[ci, 1]
                gx0 = win[ci, 2]
                gx1 = win[ci, 3]
                glast = ci
                for cj in range(ci + 1, ncut):
                    if not deferred[cj]:
                        continue
                    ny0 = min(gy0, win[cj, 0])
                    ny1 = max(gy1, win[cj, 1])
                    nx0 = min(gx0, win[cj, 2])
                    nx1 = max(gx1, win[cj, 3])
                    frac_g = (gy1 - gy0 + 1) * (gx1 - gx0 + 1) / (H * W)
                    frac_j = (win[cj, 1] - win[cj, 0] + 1) * (win[cj, 3] - win[cj, 2] + 1) / (H * W)
                    frac_n = (ny1 - ny0 + 1) * (nx1 - nx0 + 1) / (H * W)
                    apart = start[cuts[glast] + 1] * frac_g + start[cuts[cj] + 1] * frac_j + 2 * over
                    merged = start[cuts[cj] + 1] * frac_n + over
                    if merged > apart:
                        break
                    gy0 = ny0
                    gy1 = ny1
                    gx0 = nx0
                    gx1 = nx1
                    glast = cj
                for k in range(ci, glast + 1):
                    ingroup[k] = deferred[k]
                # the window starts at a map column multiple of _STRIDE (a few columns more):
                # its own stream then has the map's tie order. Any window holding the
                # components with holes gives the same holes (all the map's holes).
                gx0 -= (gx0 - 1) % _STRIDE
                qs = np.ascontiguousarray(q2[gy0 - 1: gy1, gx0 - 1: gx1])  # one specialization
                area = (gy1 - gy0 + 1) * (gx1 - gx0 + 1)
                _bg_init(qs, area == H * W, tie_w[gx0 - 1: gx1 + 2], tie_e[gx0 - 1: gx1 + 2], ws32, wsm, ws16)
                if area == H * W:
                    word = ws64[0, :area]
                    wstart = start
                else:  # the window's own stream: the pass visits its pixels only
                    word = ws64[1, :area]
                    wstart = _counting_sort(qs, gx1 - gx0 + 3, wsm, word)
                st[0] = 0
                st[2] = 0
                hrec, _ = _bg_run(
                    gy1 - gy0 + 1, gx1 - gx0 + 1, gy0, gx0, wp, word, wstart, slot, ingroup,
                    i0, cuts[glast], no, st, hrec, hbeg, hend, ws32, g4n, g4r, da4, deul,
                )
                gfirst = ci
            hh = gy1 - gy0 + 1
            ww = gx1 - gx0 + 1
            wps = ww + 2
            for k in range(gfirst, glast + 1):
                if not ingroup[k]:
                    continue
                c = cuts[k]
                nc = cend[k] - cbeg[k]
                nhc = hend[k] - hbeg[k]
                nn = nc + nhc
                if nn > cap:
                    cap = 2 * nn
                    nkey = np.empty(cap, np.int64)
                    npar = np.empty(cap, np.int64)
                    narea = np.empty(cap, np.int64)
                    nbox = np.empty((cap, 4), np.int64)
                    scr = np.empty((6, cap + 1), np.int64)
                c0 = cbeg[k]
                for i in range(nc):  # components: nodes 0..nc-1 (padded coordinates)
                    slotn[crec[c0 + i, 0]] = i
                    kk = crec[c0 + i, 1]
                    nkey[i] = kk
                    narea[i] = crec[c0 + i, 5]
                    nbox[i, 0] = crec[c0 + i, 3] - 1
                    nbox[i, 1] = int((kk + 0.5) * inv_wp) - 1
                    nbox[i, 2] = min(crec[c0 + i, 4], W - 1)
                    nbox[i, 3] = min(int((crec[c0 + i, 2] + 0.5) * inv_wp), H - 1)
                    npar[i] = -1
                h0 = hbeg[k]
                for i in range(nhc):  # holes: nodes nc..nn-1
                    slota[hrec[h0 + i, 0]] = nc + i
                for i in range(nhc):
                    kk = nc + i
                    hk = hrec[h0 + i, 1]
                    nkey[kk] = hk
                    narea[kk] = hrec[h0 + i, 5]
                    nbox[kk, 0] = hrec[h0 + i, 3] - 2
                    nbox[kk, 1] = int((hk + 0.5) * inv_wp) - 2
                    nbox[kk, 2] = min(hrec[h0 + i, 4] + 1, W - 1)
                    nbox[kk, 3] = min(int((hrec[h0 + i, 2] + 0.5) * inv_wp) + 1, H - 1)
                    # parent: the component holding the pixel left of the hole's first pixel
                    npar[kk] = slotn[_find_at(pb, tb, hk - 1, c, no)]
                if nhc > 0:
                    for i in range(nc):
                        # parent: the hole holding the pixel left of its first pixel, if any
                        kp = nkey[i]
                        ys = int((kp + 0.5) * inv_wp) - gy0 + 1
                        xs = kp - int((kp + 0.5) * inv_wp) * wp - 1 - gx0 + 1
                        if 1 <= ys <= hh and 1 <= xs <= ww:
                            ra = _find_at(pa, ta, ys * wps + xs, c, yes)
                            if bt[ra] > c:
                                npar[i] = slota[ra]
                ostart[k] = nout
                out, nout = _emit(nkey, npar, narea, nbox, nn, nhc > 0, scr, out, nout, largest, k)
                oend[k] = nout
            ci = glast + 1
    return out[:nout], ostart, oend, largest, inv, ndef


class _Workspace(threading.local):
    """Per-thread buffers for the last image shape seen (fresh 200 KB buffers on every call
    would cost page faults)."""

    shape: Tuple[int, int] = (-1, -1)

    def get(self, h: int, w: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.shape != (h, w):
            npix = (h + 2) * (w + 2)
            self.ws64 = np.empty((2, npix), np.int64)  # pixel streams: map, window
            self.ws32 = np.empty((_N32, npix), np.int32)
            self.wsm = np.empty(npix, np.uint16)  # neighbour masks: foreground | background << 8
            self.ws16 = np.empty((2, npix), np.int16)
            self.shape = (h, w)
        return self.ws64, self.ws32, self.wsm, self.ws16


_WS = _Workspace()


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
        return SweepResult.from_lists({m: [] for m in MODES}, np.zeros(0, np.int64))
    if q.size == 0 or (q.shape[0] + 2) * (q.shape[1] + 2) > MAX_PIXELS:
        return sweep_reference(q, taus)  # degenerate or beyond the packed index range
    all_boxes, start, end, largest, inv, _ = _sweep_kernel(
        q, cuts, *_WS.get(*q.shape), _G8N, _G8R, _G4N, _G4R, _DA8, _DA4, _DEUL
    )
    m = largest.shape[0]
    one = np.arange(m + 1, dtype=np.int64)
    return SweepResult({"all": CutBoxes(all_boxes, start, end), "largest": CutBoxes(largest, one[:-1], one[1:])}, inv)
