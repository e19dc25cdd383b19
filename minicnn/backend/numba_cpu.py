"""Numba CPU kernels for the hot paths. Anything not here falls back to ``reference.py``.

Every kernel is compiled with ``cache=True`` so the compile cost (about a second each)
is paid once per machine, not once per process. Kernels with a ``prange`` loop are
compiled twice, threaded and serial, and only big arrays start the threads (see
"threads, or not" below). Each public function checks whether
its fast case applies and otherwise calls the reference kernel: the results must be
the same, and ``tests/backend`` checks that they are.
"""

from __future__ import annotations

import math
import types

import numba
import numpy as np

from minicnn.backend import reference
from minicnn.backend.numba_threads import pin_workers, threads

# ---------------------------------------------------------------- threads, or not
# A parallel kernel (a prange loop) wakes and joins Numba's threads on every call, and this
# costs tens of microseconds: an empty prange loop took 47 us per call with the OpenMP
# layer (numba_threads.py says why that layer), 77-160 us with the workqueue layer, the
# same loop compiled serially 0.3 us. A CIFAR ResNet's training step makes about 250 such
# calls on arrays of 0.1-6 MB, whose whole work is often less than that: ReLU of a 2 MB
# batch took 0.19 ms threaded, 0.04 ms on one core; im2col of a 6 MB column matrix 0.27
# against 0.12 ms. So every prange kernel below is compiled twice, threaded and serial
# (where prange runs as range), and a call runs the threaded one only on arrays of
# PARALLEL_MIN_BYTES or more (measured crossovers: im2col ~10 MB of columns, ReLU ~25 MB of
# input; with the OpenMP layer, 4 MB made ResNet-20 and ResNet-56 steps 1% slower, 2 MB
# 3%). The two builds compute the same thing: the kernel tests run once per build (the
# ``numba_builds`` fixture of tests/conftest.py).

PARALLEL_MIN_BYTES = 16 << 20  # all the kernel's array arguments together, in bytes


def _serial_copy(fn):
    """``fn`` as a second function object named ``<name>_serial``: Numba's cache files are
    named after the function, so the serial build must not share the threaded one's."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                              fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + "_serial"
    return copy


class ParallelKernel:
    """A prange kernel compiled threaded (``.threaded``) and serial (``.serial``); calling
    it runs the threaded build when its array arguments hold PARALLEL_MIN_BYTES or more."""

    def __init__(self, fn, **options):
        self.threaded = numba.njit(cache=True, parallel=True, **options)(fn)
        self.serial = numba.njit(cache=True, **options)(_serial_copy(fn))
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def __call__(self, *args, work_per_byte: float = 1):
        """Run the build the arrays' size asks for. A call doing much more work per byte than
        an elementwise loop says how much (``work_per_byte``): the threaded build then runs
        from ``PARALLEL_MIN_BYTES / work_per_byte`` of arrays."""
        nbytes = sum(a.nbytes for a in args if isinstance(a, np.ndarray))
        if nbytes * work_per_byte < PARALLEL_MIN_BYTES or threads() == 1:
            return self.serial(*args)
        pin_workers()  # once per process, workqueue layer: one worker per core (numba_threads.py)
        return self.threaded(*args)


def parallel_kernel(**options):
    """Decorator for a prange kernel, in place of Numba's ``njit`` with ``cache`` and
    ``parallel`` on (``options`` such as ``fastmath`` go to both builds)."""
    return lambda fn: ParallelKernel(fn, **options)

# ---------------------------------------------------------------- scatter-add


@numba.njit(cache=True)
def _add_rows(target, index, values):  # target[index[i], :] += values[i, :], rows in order
    for i in range(index.shape[0]):
        row = index[i]
        for j in range(target.shape[1]):
            target[row, j] += values[i, j]


def index_add(target, index, values) -> None:
    """In place ``target[index] += values`` with repeats accumulated (see the reference).

    Fast case: ``index`` is one 1-D integer array selecting rows of a C-contiguous
    float ``target`` -- the backward of ``x[idx]`` and of cross-entropy's target pick.
    """
    fast = (
        isinstance(index, np.ndarray)
        and index.ndim == 1
        and index.dtype.kind in "iu"
        and target.ndim >= 1
        and target.flags.c_contiguous
        and target.dtype.kind == "f"
    )
    if not fast:
        reference.index_add(target, index, values)
        return
    n = target.shape[0]
    idx = index.astype(np.int64)
    idx = np.where(idx < 0, idx + n, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"index out of range for axis 0 of size {n}")
    if idx.size == 0 or target.size == 0:  # nothing to add (and no (0, -1) reshape)
        return
    rows = np.broadcast_to(values, (idx.shape[0],) + target.shape[1:]).astype(target.dtype)
    _add_rows(target.reshape(n, -1), idx, np.ascontiguousarray(rows).reshape(idx.shape[0], -1))


# ---------------------------------------------------------------- select
# NumPy's where branches on every element. On the random signs of activations (the
# mask of x > 0) the branch predictor misses half the time: 2M float32 took 7.6 ms with a
# random mask, 1.0 ms with a sorted one. This loop compiles to a branch-free select:
# 0.9 ms on the random mask (2 cores).

# Smaller arrays go to NumPy. Serial builds (see "threads, or not") made the loops cheap to
# call: at 256 float32 NumPy took 0.8-1.0 us, the loops 1.1-1.3 us; at 4,096 the loops
# 1.2-2.9 us against NumPy's 2.2-3.1; at 65,536 (the bound while every call started the
# threads) 3.6 and 26 us against 22 and 228 (relu, where).
_SELECT_MIN = 1 << 12


@parallel_kernel()
def _select_kernel(cond, a, b, out):  # out[i] = a[i] if cond[i] else b[i]; prange over i
    for i in numba.prange(out.size):
        out[i] = a[i] if cond[i] else b[i]


@parallel_kernel()
def _select_value_kernel(cond, a, value, a_where, out):  # out[i] = a[i] if cond[i] == a_where
    for i in numba.prange(out.size):  # else value (a scalar); prange over i
        out[i] = a[i] if cond[i] == a_where else value


def where(cond, a, b):
    """Numba :func:`reference.where` for big float arrays of one shape (either of ``a``
    and ``b`` may be a scalar); anything else goes to the reference."""
    arrays = [v for v in (a, b) if np.ndim(v) > 0]
    if (not isinstance(cond, np.ndarray) or cond.dtype != np.bool_ or cond.size < _SELECT_MIN
            or not arrays or not _floats(*arrays)
            or any(v.shape != cond.shape for v in arrays)):
        return reference.where(cond, a, b)
    dtype = arrays[0].dtype
    if np.result_type(a, b) != dtype:  # e.g. a float64 scalar beside float32: NumPy promotes
        return reference.where(cond, a, b)
    flat_cond = np.ascontiguousarray(cond).reshape(-1)
    out = np.empty(cond.shape, dtype=dtype)
    if len(arrays) == 2:
        _select_kernel(flat_cond, np.ascontiguousarray(a).reshape(-1),
                       np.ascontiguousarray(b).reshape(-1), out.reshape(-1))
    else:  # one scalar: no array of it is made
        a_where = np.ndim(a) > 0
        array, value = (a, b) if a_where else (b, a)
        _select_value_kernel(flat_cond, np.ascontiguousarray(array).reshape(-1),
                             dtype.type(value), a_where, out.reshape(-1))
    return out


# ReLU in one pass each way (threaded on big arrays), branch-free for the same reason as the
# select above. NumPy took two passes forward (the mask, then the maximum) and a
# bool-to-float product backward, on one thread.


@parallel_kernel()
def _relu_kernel(x, out):  # out[i] = 0 if x[i] <= 0 else x[i] (NaN stays NaN); prange over i
    for i in numba.prange(out.size):
        v = x[i]
        out[i] = 0 if v <= 0 else v


@parallel_kernel()
def _relu_backward_kernel(g, out, dx):  # dx[i] = 0 if out[i] <= 0 else g[i]; prange over i
    for i in numba.prange(dx.size):
        dx[i] = 0 if out[i] <= 0 else g[i]


def relu(x):
    """Numba :func:`reference.relu` for big float arrays."""
    if not _floats(x) or x.size < _SELECT_MIN:
        return reference.relu(x)
    out = np.empty(x.shape, dtype=x.dtype)
    _relu_kernel(np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
    return out


def relu_backward(grad, out):
    """Numba :func:`reference.relu_backward` for big float arrays of one shape and dtype."""
    if not _floats(grad, out) or grad.shape != out.shape or grad.size < _SELECT_MIN:
        return reference.relu_backward(grad, out)
    dx = np.empty(grad.shape, dtype=grad.dtype)
    _relu_backward_kernel(np.ascontiguousarray(grad).reshape(-1),
                          np.ascontiguousarray(out).reshape(-1), dx.reshape(-1))
    return dx


# ---------------------------------------------------------------- log-softmax over rows


@parallel_kernel()
def _log_softmax_rows(x, out):  # per row: out = x - max - log(sum(exp(x - max)))
    for i in numba.prange(x.shape[0]):
        m = x[i, 0]
        for j in range(1, x.shape[1]):
            m = max(m, x[i, j])
        s = 0.0
        for j in range(x.shape[1]):
            s += np.exp(x[i, j] - m)
        lse = m + np.log(s)
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - lse


def log_softmax(x, axis: int):
    """``log_softmax`` along ``axis``; fast case: the last axis of a float array."""
    if x.ndim == 0 or axis % x.ndim != x.ndim - 1 or x.dtype.kind != "f" or x.shape[-1] == 0:
        return reference.log_softmax(x, axis)
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    _log_softmax_rows(rows, out)
    return out.reshape(x.shape)


# ---------------------------------------------------------------- error function


@parallel_kernel()
def _erf_flat(x, out):  # out[i] = erf(x[i]) with libm's erf, one parallel pass over the elements
    for i in numba.prange(x.shape[0]):
        out[i] = math.erf(x[i])


def erf(x):
    """``erf`` element-wise; fast case: a float32 or float64 array (libm's erf, compiled)."""
    if x.dtype != np.float32 and x.dtype != np.float64:
        return reference.erf(x)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    _erf_flat(flat, out)
    return out.reshape(x.shape)


# ---------------------------------------------------------------- convolution
# Same arguments as the reference kernels (see reference.py, "convolution"). Each thread
# works on one (image, channel) plane and first copies it into a private zero-padded
# "canvas" of hp x wp pixels (reference._canvas_hw): then no loop needs a bounds test, and
# a summing kernel adds into its own canvas, so no two threads write to the same place.
# Two measured details (Zen 5, batch 32):
# * inner loops index with ``np.uint64(...)``: the index is known to be >= 0, and telling
#   Numba so removes its negative-index wraparound test, which blocks vectorization;
# * the grouped (and depthwise) kernels work on a "wide" grid with rows of wp values (the
#   padded width): a kernel offset (i, j) is then ONE loop over the whole plane,
#   k -> s*k + i*dh*wp + j*dw, instead of one short loop per output row (LLVM runs loops
#   shorter than its vector block, 8 x 4 floats, without SIMD). The wide grid's extra
#   columns hold junk (forward) or zeros (backward) and are dropped. 7-10x faster than row
#   loops on 16x16 planes.


@numba.njit(cache=True, inline="always")
def _load_padded(plane, canvas, pt, pl, wp):  # flat canvas[(r+pt)*wp + q+pl] = plane[r, q]
    h, w = plane.shape
    for r in range(h):
        row = plane[r]
        base = (r + pt) * wp + pl
        for q in range(w):
            canvas[np.uint64(base + q)] = row[np.uint64(q)]


@numba.njit(cache=True, inline="always")
def _store_cropped(canvas, plane, pt, pl, wp):  # plane[r, q] = flat canvas[(r+pt)*wp + q+pl]
    h, w = plane.shape
    for r in range(h):
        row = plane[r]
        base = (r + pt) * wp + pl
        for q in range(w):
            row[np.uint64(q)] = canvas[np.uint64(base + q)]


@parallel_kernel()
def _im2col_kernel(x, cols, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out, hp, wp):
    # cols[(c*kh+i)*kw+j, (n*h_out+y)*w_out+xo] = x_padded[n, c, y*sh+i*dh, xo*sw+j*dw];
    # prange over (c, n) planes: pad the plane once, then copy rows for each (i, j), y
    n_batch, channels = x.shape[0], x.shape[1]
    length = h_out * w_out
    for p in numba.prange(channels * n_batch):
        c = p // n_batch
        n = p - c * n_batch
        canvas = np.zeros(hp * wp, dtype=x.dtype)
        _load_padded(x[n, c], canvas, pt, pl, wp)
        for i in range(kh):
            for j in range(kw):
                segment = cols[(c * kh + i) * kw + j, n * length:(n + 1) * length]
                for y in range(h_out):
                    src = (y * sh + i * dh) * wp + j * dw
                    dst = y * w_out
                    for xo in range(w_out):
                        segment[np.uint64(dst + xo)] = canvas[np.uint64(src + xo * sw)]


@parallel_kernel()
def _col2im_kernel(cols, dx, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out, hp, wp):
    # dx[n, c] = every cols entry added back at the pixel it was read from (im2col's adjoint);
    # prange over (n, c) planes, each summed in its own canvas, then cropped into dx
    n_batch, channels = dx.shape[0], dx.shape[1]
    length = h_out * w_out
    for p in numba.prange(n_batch * channels):
        n = p // channels
        c = p - n * channels
        canvas = np.zeros(hp * wp, dtype=dx.dtype)
        for i in range(kh):
            for j in range(kw):
                segment = cols[(c * kh + i) * kw + j, n * length:(n + 1) * length]
                for y in range(h_out):
                    dst = (y * sh + i * dh) * wp + j * dw
                    src = y * w_out
                    for xo in range(w_out):
                        canvas[np.uint64(dst + xo * sw)] += segment[np.uint64(src + xo)]
        _store_cropped(canvas, dx[n, c], pt, pl, wp)


def _conv_ints(kernel, stride, padding, dilation, x_shape, out_size):
    """The ints the compiled loops take: kh, kw, sh, sw, top, left, dh, dw, h_out, w_out,
    and the canvas size hp, wp."""
    h_out, w_out = reference._conv_out_hw(x_shape, kernel, stride, padding, dilation, out_size)
    hp, wp = reference._canvas_hw(x_shape, kernel, stride, padding, dilation, h_out, w_out)
    (pt, _), (pl, _) = padding
    return tuple(int(v) for v in (kernel[0], kernel[1], stride[0], stride[1], pt, pl,
                                  dilation[0], dilation[1], h_out, w_out, hp, wp))


def _floats(*arrays) -> bool:
    """All NumPy float32 (or all float64) arrays: the types the kernels are compiled for."""
    return (all(isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64)
                for a in arrays) and len({a.dtype for a in arrays}) == 1)


def im2col(x, kernel, stride, padding, dilation, out_size=None, out=None):
    """Numba :func:`reference.im2col`; ``out`` may be a preallocated ``cols`` buffer."""
    if not _floats(x):
        return reference.im2col(x, kernel, stride, padding, dilation, out_size, out)
    n, c = x.shape[:2]
    kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out, hp, wp = _conv_ints(
        kernel, stride, padding, dilation, x.shape, out_size)
    shape = (c * kh * kw, n * h_out * w_out)
    cols = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    _im2col_kernel(np.ascontiguousarray(x), cols, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out,
                   hp, wp)
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_size=None):
    """Numba :func:`reference.col2im`."""
    if not _floats(cols):
        return reference.col2im(cols, x_shape, kernel, stride, padding, dilation, out_size)
    n, c = x_shape[:2]
    kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out, hp, wp = _conv_ints(
        kernel, stride, padding, dilation, x_shape, out_size)
    cols = np.ascontiguousarray(cols).reshape(c * kh * kw, n * h_out * w_out)
    dx = np.empty(tuple(x_shape), dtype=cols.dtype)
    _col2im_kernel(cols, dx, kh, kw, sh, sw, pt, pl, dh, dw, h_out, w_out, hp, wp)
    return dx


# Grouped convolution (see reference.py, "grouped convolution"), depthwise included (one
# input channel per group): the wide grid above, with C/G planes per thread. A group's C/G
# canvases lie end to end in one flat array, so each term (c, i, j) of the sum is one offset
# into it. Each pass over the wide grid handles FOUR terms (forward, weight gradient) or
# four output channels (input gradient): one load and store of the accumulator per four
# multiply-adds instead of per one, which the loop is bound by.


@numba.njit(cache=True)
def _term_offsets(cg, kh, kw, dh, dw, hp, wp):  # offs[(c*kh+i)*kw+j] = c*hp*wp + i*dh*wp + j*dw
    offs = np.empty(cg * kh * kw, dtype=np.int64)
    for c in range(cg):
        for i in range(kh):
            for j in range(kw):
                offs[(c * kh + i) * kw + j] = c * hp * wp + i * dh * wp + j * dw
    return offs


@parallel_kernel()
def _grouped_forward_kernel(x, w, out, s, pt, pl, dh, dw, hp, wp):
    # out[n, o, y, xo] = sum_{c,i,j} w[o, c, i, j] * x_padded[n, g*C/G+c, y*s+i*dh, xo*s+j*dw],
    # g = o // (O/G); prange over (n, g): pad the group's planes once, then per output
    # channel one wide-grid pass per four (c, i, j) terms
    n_batch, channels = x.shape[0], x.shape[1]
    n_out, cg, kh, kw = w.shape
    h_out, w_out = out.shape[2], out.shape[3]
    groups = channels // cg
    og = n_out // groups
    terms = cg * kh * kw
    plane = hp * wp
    wf = w.reshape(n_out, terms)
    offs = _term_offsets(cg, kh, kw, dh, dw, hp, wp)
    count = (h_out - 1) * wp + w_out  # the wide-grid positions up to the last output
    quads = terms - terms % 4
    for p in numba.prange(n_batch * groups):
        n = p // groups
        g = p - n * groups
        canvas = np.zeros(cg * plane, dtype=x.dtype)
        for c in range(cg):
            _load_padded(x[n, g * cg + c], canvas[c * plane:(c + 1) * plane], pt, pl, wp)
        wide = np.empty(count, dtype=out.dtype)
        for m in range(og):
            o = g * og + m
            wide[:] = 0
            for t in range(0, quads, 4):
                a0, a1, a2, a3 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3]
                w0, w1, w2, w3 = wf[o, t], wf[o, t + 1], wf[o, t + 2], wf[o, t + 3]
                for k in range(count):
                    sk = s * k
                    wide[k] += ((w0 * canvas[np.uint64(sk + a0)] + w1 * canvas[np.uint64(sk + a1)])
                                + (w2 * canvas[np.uint64(sk + a2)]
                                   + w3 * canvas[np.uint64(sk + a3)]))
            for t in range(quads, terms):
                a0, w0 = offs[t], wf[o, t]
                for k in range(count):
                    wide[k] += w0 * canvas[np.uint64(s * k + a0)]
            for y in range(h_out):
                for xo in range(w_out):
                    out[n, o, y, xo] = wide[y * wp + xo]


@parallel_kernel()
def _grouped_backward_input_kernel(g, w, dx, s, pt, pl, dh, dw, hp, wp):
    # dx[n, grp*C/G+c] = sum over m, i, j of w[grp*O/G+m, c, i, j] * g[n, grp*O/G+m] added at
    # the pixels read; prange over (n, grp): the group's O/G gradient planes go on the wide grid
    # (zeros in the extra columns), then per input channel and (i, j) one pass per four m
    # (then one per pair, then single m)
    n_batch, channels = dx.shape[0], dx.shape[1]
    n_out, cg, kh, kw = w.shape
    h_out, w_out = g.shape[2], g.shape[3]
    groups = channels // cg
    og = n_out // groups
    count = (h_out - 1) * wp + w_out
    quads = og - og % 4
    for p in numba.prange(n_batch * groups):
        n = p // groups
        grp = p - n * groups
        wide = np.zeros((og, count), dtype=g.dtype)
        for m in range(og):
            for y in range(h_out):
                for xo in range(w_out):
                    wide[m, y * wp + xo] = g[n, grp * og + m, y, xo]
        canvas = np.empty(hp * wp, dtype=dx.dtype)
        for c in range(cg):
            canvas[:] = 0
            for i in range(kh):
                for j in range(kw):
                    base = i * dh * wp + j * dw
                    for m in range(0, quads, 4):
                        o = grp * og + m
                        w0, w1, w2, w3 = w[o, c, i, j], w[o + 1, c, i, j], w[o + 2, c, i, j], \
                            w[o + 3, c, i, j]
                        r0, r1, r2, r3 = wide[m], wide[m + 1], wide[m + 2], wide[m + 3]
                        for k in range(count):
                            canvas[np.uint64(s * k + base)] += ((w0 * r0[k] + w1 * r1[k])
                                                                + (w2 * r2[k] + w3 * r3[k]))
                    rest = quads
                    if og - quads >= 2:  # a pair left over (O/G = 2 is common)
                        o = grp * og + quads
                        w0, w1 = w[o, c, i, j], w[o + 1, c, i, j]
                        r0, r1 = wide[quads], wide[quads + 1]
                        for k in range(count):
                            canvas[np.uint64(s * k + base)] += w0 * r0[k] + w1 * r1[k]
                        rest = quads + 2
                    for m in range(rest, og):
                        w0, r0 = w[grp * og + m, c, i, j], wide[m]
                        for k in range(count):
                            canvas[np.uint64(s * k + base)] += w0 * r0[k]
            _store_cropped(canvas, dx[n, grp * cg + c], pt, pl, wp)


@parallel_kernel(fastmath={"reassoc", "contract"})
def _grouped_backward_weight_kernel(g, x, gw, kh, kw, s, pt, pl, dh, dw, hp, wp, zero):
    # gw[o, (c*kh+i)*kw+j] = sum_{n,y,xo} g[n, o, y, xo] * x_padded[n, grp*C/G+c, y*s+i*dh,
    # xo*s+j*dw], grp = o // (O/G); prange over groups; per image and output channel one
    # wide-grid pass per four (c, i, j) dot products, summed in g's dtype, then in float64
    n_batch, n_out, h_out, w_out = g.shape
    terms = gw.shape[1]
    cg = terms // (kh * kw)
    groups = x.shape[1] // cg
    og = n_out // groups
    plane = hp * wp
    offs = _term_offsets(cg, kh, kw, dh, dw, hp, wp)
    count = (h_out - 1) * wp + w_out
    quads = terms - terms % 4
    for grp in numba.prange(groups):
        total = np.zeros((og, terms), dtype=np.float64)
        canvas = np.zeros(cg * plane, dtype=x.dtype)
        wide = np.zeros(count, dtype=g.dtype)
        for n in range(n_batch):
            for c in range(cg):
                _load_padded(x[n, grp * cg + c], canvas[c * plane:(c + 1) * plane], pt, pl, wp)
            for m in range(og):
                for y in range(h_out):
                    for xo in range(w_out):
                        wide[y * wp + xo] = g[n, grp * og + m, y, xo]
                for t in range(0, quads, 4):
                    a0, a1, a2, a3 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3]
                    acc0 = acc1 = acc2 = acc3 = zero  # in g's dtype, so the sums vectorize
                    for k in range(count):
                        gk = wide[k]
                        sk = s * k
                        acc0 += gk * canvas[np.uint64(sk + a0)]
                        acc1 += gk * canvas[np.uint64(sk + a1)]
                        acc2 += gk * canvas[np.uint64(sk + a2)]
                        acc3 += gk * canvas[np.uint64(sk + a3)]
                    total[m, t] += acc0
                    total[m, t + 1] += acc1
                    total[m, t + 2] += acc2
                    total[m, t + 3] += acc3
                for t in range(quads, terms):
                    a0 = offs[t]
                    acc0 = zero
                    for k in range(count):
                        acc0 += wide[k] * canvas[np.uint64(s * k + a0)]
                    total[m, t] += acc0
        for m in range(og):
            for t in range(terms):
                gw[grp * og + m, t] = total[m, t]


# Dense convolution (one group) with stride 1: the direct kernels conv.py's DIRECT
# algorithm runs on planes of 8x8 and more (every stride-1 layer of a CIFAR ResNet), where
# im2col's column matrix costs as much as the product. Same wide grid as above, but
# register-blocked: a pass over the grid handles eight output channels and four (c, i, j)
# terms (forward), or four output channels times four terms (weight gradient), so each
# loaded value feeds 4-8 multiply-adds. The input gradient is the forward kernel run on dy
# with the kernel flipped and its in/out axes swapped (a stride-1 convolution's adjoint).
# Small planes are stacked: a canvas holds a stack of images one below the other, sharing
# their padding (_stack_pitch), so that a pass runs over at least DENSE_STACK_POSITIONS
# positions; and every pass runs to a whole number of LANES positions (reading the canvas's
# zero tail), so that LLVM's vector loop needs no scalar remainder. LLVM compiles the
# passes to AVX-512 on these Zen 5 machines. Forward at batch 32, 2 cores (1 core):
# 16 channels at 32x32 0.54-0.58 ms, 260-280 GFLOP/s (0.83-1.1 ms); 32 at 16x16 0.55 ms,
# 273 GFLOP/s (0.85 ms); 64 at 8x8 0.60-0.78 ms (1.04-1.12 ms). Four output channels by
# eight terms per pass (the first version) took 0.73-0.82, 0.92 and 1.23-1.34 ms: its 32
# weights and 12 streams spilled registers (the 8 x 4 block passed 8 x 3, 6 x 6, 12 x 4
# and 4 x 8 in a model of the loop: 170 against 94-145 GFLOP/s on one core), and each
# image had its own padding (18x18 positions for a 16x16 plane, not 17x17).
# benchmarks/README.md, "Performance notes", has more. Each prange iteration calls a plain
# compiled function (one stack, or one part of the batch): Numba then compiles the loop
# once, with its fastmath options, for both builds.

LANES = 16  # float32 lanes of an AVX-512 register
DENSE_STACK_POSITIONS = 512
# The weight gradient reduces each pass to 16 sums (then adds them in float64): longer
# passes spread that out. 64 channels at 8x8, batch 32: 0.80-0.83 ms with stacks of 512
# positions, 0.73-0.75 with 2048; 32 channels at 16x16 and 16 at 32x32 equal within noise.
DENSE_WEIGHT_GRAD_POSITIONS = 2048


def _dense_work_per_byte(terms: int) -> float:
    """A dense kernel does ``terms`` = C*kh*kw multiply-adds per value it writes. Measured on
    16 channels, 3x3 (144), threads paid from 2-4 MB of arrays, 1/8 of PARALLEL_MIN_BYTES
    (at 32x32: serial up to batch 16, threaded from 32): so its arrays count terms/18 times."""
    return terms / 18


@numba.njit(cache=True, inline="always")
def _wide_positions(stack, hr, wr, h_out, w_out):
    # wide-grid positions of a stack, up to its last image's last output, in whole LANES
    count = ((stack - 1) * hr + h_out - 1) * wr + w_out
    return -(-count // LANES) * LANES


@numba.njit(cache=True, inline="always")
def _stack_canvas(x, n0, n1, pt, pl, hr, wr, stack):
    # canvas[c*plane + (b*hr + pt + r)*wr + pl + q] = x[n0 + b, c, r, q], zeros elsewhere:
    # channel c's plane holds the stack's images one below the other, hr rows of wr apart
    # (their padding shared, see _stack_pitch), plus a zero tail the last passes read
    frame = hr * wr
    plane = stack * frame
    canvas = np.zeros(x.shape[1] * plane + (hr + 1) * wr + LANES, dtype=x.dtype)
    for b in range(n1 - n0):
        for c in range(x.shape[1]):
            start = c * plane + b * frame
            _load_padded(x[n0 + b, c], canvas[start:start + frame], pt, pl, wr)
    return canvas


@numba.njit(cache=True, fastmath={"contract"})
def _dense_forward_stack(x, wf, offs, out, pt, pl, hr, wr, stack, n0, n1):
    # out[n, o, y, xo] = sum_t wf[o, t] * canvas[offs[t] + (b*hr + y)*wr + xo] for the images
    # n = n0 + b of one stack (n1 - n0 <= stack), t = (c, i, j); wf (O8, T4) is the weight
    # zero-padded to whole blocks of 8 output channels and 4 terms (offs with 0s)
    n_out, h_out, w_out = out.shape[1], out.shape[2], out.shape[3]
    frame = hr * wr
    count = _wide_positions(stack, hr, wr, h_out, w_out)
    canvas = _stack_canvas(x, n0, n1, pt, pl, hr, wr, stack)
    acc = np.empty((8, count), dtype=out.dtype)
    a0, a1, a2, a3, a4, a5, a6, a7 = acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], \
        acc[7]
    for o in range(0, wf.shape[0], 8):  # accumulators a0..a7: output channels o..o+7
        acc[:] = 0
        for t in range(0, wf.shape[1], 4):
            q0, q1, q2, q3 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3]
            # the 8 x 4 weights, in registers for the whole pass
            w00, w01, w02, w03 = wf[o, t], wf[o, t + 1], wf[o, t + 2], wf[o, t + 3]
            w10, w11, w12, w13 = wf[o + 1, t], wf[o + 1, t + 1], wf[o + 1, t + 2], wf[o + 1, t + 3]
            w20, w21, w22, w23 = wf[o + 2, t], wf[o + 2, t + 1], wf[o + 2, t + 2], wf[o + 2, t + 3]
            w30, w31, w32, w33 = wf[o + 3, t], wf[o + 3, t + 1], wf[o + 3, t + 2], wf[o + 3, t + 3]
            w40, w41, w42, w43 = wf[o + 4, t], wf[o + 4, t + 1], wf[o + 4, t + 2], wf[o + 4, t + 3]
            w50, w51, w52, w53 = wf[o + 5, t], wf[o + 5, t + 1], wf[o + 5, t + 2], wf[o + 5, t + 3]
            w60, w61, w62, w63 = wf[o + 6, t], wf[o + 6, t + 1], wf[o + 6, t + 2], wf[o + 6, t + 3]
            w70, w71, w72, w73 = wf[o + 7, t], wf[o + 7, t + 1], wf[o + 7, t + 2], wf[o + 7, t + 3]
            for k in range(count):
                v0, v1 = canvas[np.uint64(q0 + k)], canvas[np.uint64(q1 + k)]
                v2, v3 = canvas[np.uint64(q2 + k)], canvas[np.uint64(q3 + k)]
                a0[k] = a0[k] + w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3
                a1[k] = a1[k] + w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3
                a2[k] = a2[k] + w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3
                a3[k] = a3[k] + w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3
                a4[k] = a4[k] + w40 * v0 + w41 * v1 + w42 * v2 + w43 * v3
                a5[k] = a5[k] + w50 * v0 + w51 * v1 + w52 * v2 + w53 * v3
                a6[k] = a6[k] + w60 * v0 + w61 * v1 + w62 * v2 + w63 * v3
                a7[k] = a7[k] + w70 * v0 + w71 * v1 + w72 * v2 + w73 * v3
        for b in range(n1 - n0):  # image b's outputs start b*hr rows down
            for p in range(min(8, n_out - o)):
                _store_cropped(acc[p, b * frame:], out[n0 + b, o + p], 0, 0, wr)


@parallel_kernel()
def _dense_forward_kernel(x, wf, offs, out, pt, pl, hr, wr, stack):  # prange over stacks
    for s in numba.prange(-(-x.shape[0] // stack)):
        _dense_forward_stack(x, wf, offs, out, pt, pl, hr, wr, stack, s * stack,
                             min(x.shape[0], (s + 1) * stack))


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _dense_weight_grad_stacks(g, x, offs, total, pt, pl, hr, wr, stack, s0, s1, zero):
    # total[o, t] += sum over the stacks s0..s1 and their positions k of
    # g_wide[o, k] * canvas[offs[t] + k] (g's planes on the stacked wide grid, zeros in the
    # extra columns and rows); per stack, each block of 4 x 4 dot products is summed in g's
    # dtype (so the sums vectorize), then in float64
    n_out, h_out, w_out = g.shape[1], g.shape[2], g.shape[3]
    frame = hr * wr
    count = _wide_positions(stack, hr, wr, h_out, w_out)
    wide = np.empty((total.shape[0], count), dtype=g.dtype)
    for s in range(s0, s1):
        n0, n1 = s * stack, min(x.shape[0], (s + 1) * stack)
        canvas = _stack_canvas(x, n0, n1, pt, pl, hr, wr, stack)
        wide[:] = 0  # rows past n_out, and the columns and rows between outputs, stay zero
        for b in range(n1 - n0):
            for o in range(n_out):
                _load_padded(g[n0 + b, o], wide[o, b * frame:], 0, 0, wr)
        for o in range(0, total.shape[0], 4):
            g0, g1, g2, g3 = wide[o], wide[o + 1], wide[o + 2], wide[o + 3]
            for t in range(0, total.shape[1], 4):
                q0, q1, q2, q3 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3]
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
                for k in range(count):
                    v0, v1 = canvas[np.uint64(q0 + k)], canvas[np.uint64(q1 + k)]
                    v2, v3 = canvas[np.uint64(q2 + k)], canvas[np.uint64(q3 + k)]
                    d0, d1, d2, d3 = g0[k], g1[k], g2[k], g3[k]
                    s00 += d0 * v0
                    s01 += d0 * v1
                    s02 += d0 * v2
                    s03 += d0 * v3
                    s10 += d1 * v0
                    s11 += d1 * v1
                    s12 += d1 * v2
                    s13 += d1 * v3
                    s20 += d2 * v0
                    s21 += d2 * v1
                    s22 += d2 * v2
                    s23 += d2 * v3
                    s30 += d3 * v0
                    s31 += d3 * v1
                    s32 += d3 * v2
                    s33 += d3 * v3
                total[o, t] += s00
                total[o, t + 1] += s01
                total[o, t + 2] += s02
                total[o, t + 3] += s03
                total[o + 1, t] += s10
                total[o + 1, t + 1] += s11
                total[o + 1, t + 2] += s12
                total[o + 1, t + 3] += s13
                total[o + 2, t] += s20
                total[o + 2, t + 1] += s21
                total[o + 2, t + 2] += s22
                total[o + 2, t + 3] += s23
                total[o + 3, t] += s30
                total[o + 3, t + 1] += s31
                total[o + 3, t + 2] += s32
                total[o + 3, t + 3] += s33


@parallel_kernel()
def _dense_weight_grad_kernel(g, x, offs, totals, pt, pl, hr, wr, stack, zero):
    # prange over parts of the batch (whole stacks), each summing into its own totals[part]
    parts, stacks = totals.shape[0], -(-x.shape[0] // stack)
    for part in numba.prange(parts):
        _dense_weight_grad_stacks(g, x, offs, totals[part], pt, pl, hr, wr, stack,
                                  part * stacks // parts, (part + 1) * stacks // parts, zero)


def _blocks(count: int, size: int) -> int:
    """``count`` rounded up to whole blocks of ``size``."""
    return -(-count // size) * size


def _stack_pitch(x_shape, pt: int, pl: int, hp: int, wp: int, h_out: int,
                 w_out: int) -> tuple[int, int]:
    """``(hr, wr)``: the rows per image and values per row of a stacked canvas.

    Neighbouring images (and neighbouring rows) share their padding: the zeros below one
    image are the zeros above the next, and the wide grid reads the right padding of one
    row in the left padding of the next. A 3x3 kernel with padding 1 on 16x16 planes gets
    17x17 positions per image instead of 18x18 (11% fewer multiplies; 19% at 8x8). The
    pitch must hold the image with its top (left) padding, the windows that reach down
    (right) past the image without reaching the next one, and the outputs themselves;
    ``hp, wp`` are the padded canvas's size (every window fits in it)."""
    hr = max(x_shape[2] + pt, hp - pt, h_out)
    wr = max(x_shape[3] + pl, wp - pl, w_out)
    return hr, wr


def _dense_stack(n: int, hr: int, wr: int, positions: int = DENSE_STACK_POSITIONS) -> int:
    """Images per canvas: enough for ``positions`` positions per pass where the batch allows,
    in a number of stacks that the threads share evenly (each thread runs the same number
    of equal stacks: 32 images of 8x8 go in 4 stacks of 8, not 5 of 7, 7, 7, 7 and 4)."""
    count = threads()
    least = -(-positions // (hr * wr))  # images for ``positions``
    rounds = max(1, n // (count * least))  # stacks per thread
    return -(-n // (count * rounds))


def _dense_offsets(c, kernel, dilation, plane_rows, wr, length):
    """The canvas offset of each term (c, i, j), zero-padded to ``length`` terms; a channel's
    plane has ``plane_rows`` rows of ``wr`` (a stack of images)."""
    offs = np.zeros(length, dtype=np.int64)
    offs[:c * kernel[0] * kernel[1]] = _term_offsets(c, kernel[0], kernel[1], dilation[0],
                                                     dilation[1], plane_rows, wr)
    return offs


def _dense_conv2d(x, weight, padding, dilation, out_size=None):
    """One group, stride 1: ``x: (N, C, H, W)``, ``weight: (O, C, kh, kw)``
    ``-> (N, O, h_out, w_out)``."""
    o, c, kh, kw = weight.shape
    _, _, _, _, pt, pl, dh, dw, h_out, w_out, hp, wp = _conv_ints(
        (kh, kw), (1, 1), padding, dilation, x.shape, out_size)
    hr, wr = _stack_pitch(x.shape, pt, pl, hp, wp, h_out, w_out)
    stack = _dense_stack(x.shape[0], hr, wr)
    terms = c * kh * kw
    wf = np.zeros((_blocks(o, 8), _blocks(terms, 4)), dtype=x.dtype)
    wf[:o, :terms] = weight.reshape(o, terms)
    offs = _dense_offsets(c, (kh, kw), (dh, dw), stack * hr, wr, wf.shape[1])
    out = np.empty((x.shape[0], o, h_out, w_out), dtype=x.dtype)
    _dense_forward_kernel(np.ascontiguousarray(x), wf, offs, out, pt, pl, hr, wr, stack,
                          work_per_byte=_dense_work_per_byte(terms))
    return out


def _flipped_padding(weight_shape, padding, dilation):
    """The (top, left) padding of dy for the input gradient as a convolution of dy with the
    flipped kernel: ``dilation*(k-1) - padding``; None where that is negative."""
    (pt, _), (pl, _) = padding
    top = dilation[0] * (weight_shape[2] - 1) - pt
    left = dilation[1] * (weight_shape[3] - 1) - pl
    return None if min(top, left) < 0 else ((top, 0), (left, 0))


def _dense_conv2d_backward_weight(grad, x, kernel, padding, dilation):
    """One group, stride 1: ``grad: (N, O, h_out, w_out)``, ``x: (N, C, H, W)``
    ``-> (O, C, kh, kw)``."""
    o, c = grad.shape[1], x.shape[1]
    _, _, _, _, pt, pl, dh, dw, h_out, w_out, hp, wp = _conv_ints(
        kernel, (1, 1), padding, dilation, x.shape, grad.shape[2:])
    hr, wr = _stack_pitch(x.shape, pt, pl, hp, wp, h_out, w_out)
    stack = _dense_stack(x.shape[0], hr, wr, DENSE_WEIGHT_GRAD_POSITIONS)
    terms = c * kernel[0] * kernel[1]
    offs = _dense_offsets(c, kernel, (dh, dw), stack * hr, wr, _blocks(terms, 4))
    parts = min(-(-x.shape[0] // stack), threads())  # threads of the threaded build
    totals = np.zeros((parts, _blocks(o, 4), offs.shape[0]), dtype=np.float64)
    _dense_weight_grad_kernel(np.ascontiguousarray(grad), np.ascontiguousarray(x), offs, totals,
                              pt, pl, hr, wr, stack, grad.dtype.type(0),
                              work_per_byte=_dense_work_per_byte(terms))
    total = totals.sum(axis=0)[:o, :terms]
    return total.astype(grad.dtype).reshape(o, c, *kernel)


def grouped_conv2d(x, weight, stride, padding, dilation, out_size=None):
    """Numba :func:`reference.grouped_conv2d` (direct loops, no column matrix).

    Fast case: equal strides along both axes (the wide grid needs it); else the reference.
    One group and stride 1 (conv.py's DIRECT algorithm): the register-blocked dense kernel.
    """
    if not _floats(x, weight) or stride[0] != stride[1]:
        return reference.grouped_conv2d(x, weight, stride, padding, dilation, out_size)
    if weight.shape[1] == x.shape[1] and stride == (1, 1):
        return _dense_conv2d(x, weight, padding, dilation, out_size)
    o, _, kh, kw = weight.shape
    _, _, s, _, pt, pl, dh, dw, h_out, w_out, hp, wp = _conv_ints(
        (kh, kw), stride, padding, dilation, x.shape, out_size)
    out = np.empty((x.shape[0], o, h_out, w_out), dtype=x.dtype)
    _grouped_forward_kernel(np.ascontiguousarray(x), np.ascontiguousarray(weight), out, s, pt,
                            pl, dh, dw, hp, wp)
    return out


def grouped_conv2d_backward_input(grad, weight, x_shape, stride, padding, dilation):
    """Numba :func:`reference.grouped_conv2d_backward_input` (equal strides; else reference).

    One group and stride 1: the dense forward kernel on ``grad`` with the kernel flipped and
    its in/out axes swapped, padded by ``dilation*(k-1) - padding`` (where that is >= 0).
    """
    if not _floats(grad, weight) or stride[0] != stride[1]:
        return reference.grouped_conv2d_backward_input(grad, weight, x_shape, stride, padding,
                                                       dilation)
    flipped_padding = _flipped_padding(weight.shape, padding, dilation)
    if weight.shape[1] == x_shape[1] and stride == (1, 1) and flipped_padding is not None:
        flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        return _dense_conv2d(grad, flipped, flipped_padding, dilation, out_size=x_shape[2:])
    _, _, kh, kw = weight.shape
    _, _, s, _, pt, pl, dh, dw, _, _, hp, wp = _conv_ints(
        (kh, kw), stride, padding, dilation, x_shape, grad.shape[2:])
    dx = np.empty(tuple(x_shape), dtype=grad.dtype)
    _grouped_backward_input_kernel(np.ascontiguousarray(grad), np.ascontiguousarray(weight), dx,
                                   s, pt, pl, dh, dw, hp, wp)
    return dx


def grouped_conv2d_backward_weight(grad, x, kernel, stride, padding, dilation, groups):
    """Numba :func:`reference.grouped_conv2d_backward_weight` (equal strides; else reference).
    One group and stride 1: the register-blocked dense kernel."""
    if not _floats(grad, x) or stride[0] != stride[1]:
        return reference.grouped_conv2d_backward_weight(grad, x, kernel, stride, padding,
                                                        dilation, groups)
    if groups == 1 and stride == (1, 1):
        return _dense_conv2d_backward_weight(grad, x, kernel, padding, dilation)
    kh, kw = kernel
    o, cg = grad.shape[1], x.shape[1] // groups
    _, _, s, _, pt, pl, dh, dw, _, _, hp, wp = _conv_ints(
        kernel, stride, padding, dilation, x.shape, grad.shape[2:])
    gw = np.empty((o, cg * kh * kw), dtype=grad.dtype)
    _grouped_backward_weight_kernel(np.ascontiguousarray(grad), np.ascontiguousarray(x), gw,
                                    int(kh), int(kw), s, pt, pl, dh, dw, hp, wp,
                                    grad.dtype.type(0))
    return gw.reshape(o, cg, kh, kw)


def depthwise_conv2d_backward_weight(grad, x, kernel, stride, padding, dilation):
    """Depthwise = grouped with one input channel per group (groups = C)."""
    return grouped_conv2d_backward_weight(grad, x, kernel, stride, padding, dilation, x.shape[1])


# ---- Winograd F(2x2, 3x3) transforms (see reference.py, "Winograd F(2x2, 3x3)")
# Each thread owns one (image, channel) plane: it pads the plane into a canvas of whole
# tiles, then visits its tiles in order. A tile's 16 values are written with explicit
# 4-point transforms (the four small functions below), not matrix products.


@numba.njit(cache=True, inline="always")
def _bt_times(a0, a1, a2, a3):  # B^T @ (a0, a1, a2, a3)
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


@numba.njit(cache=True, inline="always")
def _b_times(a0, a1, a2, a3):  # B @ (a0, a1, a2, a3), the adjoint of _bt_times
    return a0, a1 - a2 + a3, a1 + a2 - a0, -a3


@numba.njit(cache=True, inline="always")
def _at_times(a0, a1, a2, a3):  # A^T @ (a0, a1, a2, a3): 4 values -> 2
    return a0 + a1 + a2, a1 - a2 - a3


@numba.njit(cache=True, inline="always")
def _a_times(a0, a1):  # A @ (a0, a1): 2 values -> 4, the adjoint of _at_times
    return a0, a0 + a1, a0 - a1, -a1


@parallel_kernel()
def _winograd_input_kernel(x, v, pt, pl, th, tw):
    # v[4a+b, c, t] = (B^T d B)[a, b], d = the 4x4 tile of padded x[n, c] at (2ty, 2tx),
    # t = (n*th + ty)*tw + tx; prange over (c, n) planes, then tile rows: B^T d for the
    # whole row of tiles at once (4 canvas rows -> e), then (.) B tile by tile
    n_batch, channels = x.shape[0], x.shape[1]
    wp = 2 * tw + 2
    for p in numba.prange(channels * n_batch):
        c = p // n_batch
        n = p - c * n_batch
        d = np.zeros((2 * th + 2) * wp, dtype=x.dtype)
        _load_padded(x[n, c], d, pt, pl, wp)
        e = np.empty((4, wp), dtype=x.dtype)
        for ty in range(th):
            r = 2 * ty * wp
            for q in range(wp):
                e[0, q], e[1, q], e[2, q], e[3, q] = _bt_times(
                    d[r + q], d[r + wp + q], d[r + 2 * wp + q], d[r + 3 * wp + q])
            t0 = (n * th + ty) * tw
            for a in range(4):
                ea = e[a]
                for tx in range(tw):
                    q = np.uint64(2 * tx)
                    v0, v1, v2, v3 = _bt_times(ea[q], ea[q + 1], ea[q + 2], ea[q + 3])
                    t = np.uint64(t0 + tx)
                    v[4 * a, c, t] = v0
                    v[4 * a + 1, c, t] = v1
                    v[4 * a + 2, c, t] = v2
                    v[4 * a + 3, c, t] = v3


@parallel_kernel()
def _winograd_input_backward_kernel(dv, dx, pt, pl, th, tw):
    # dx[n, c] = the sum over tiles of B dV B^T added at the 4x4 pixels the tile read;
    # prange over (n, c) planes, each summed in its own canvas, then cropped into dx. Per
    # tile row: (.) B^T tile by tile into four rows e (columns 0, 1 of each tile) and f
    # (columns 2, 3, which overlap the next tile's 0, 1), then B (e + f) onto the canvas
    n_batch, channels = dx.shape[0], dx.shape[1]
    wp = 2 * tw + 2
    for p in numba.prange(n_batch * channels):
        n = p // channels
        c = p - n * channels
        canvas = np.zeros((2 * th + 2) * wp, dtype=dx.dtype)
        e = np.zeros((4, wp), dtype=dx.dtype)  # e[:, 2tw:] and f[:, :2] stay zero
        f = np.zeros((4, wp), dtype=dx.dtype)
        for ty in range(th):
            t0 = (n * th + ty) * tw
            for a in range(4):
                ea, fa = e[a], f[a]
                for tx in range(tw):
                    t = np.uint64(t0 + tx)
                    d0, d1, d2, d3 = _b_times(dv[4 * a, c, t], dv[4 * a + 1, c, t],
                                              dv[4 * a + 2, c, t], dv[4 * a + 3, c, t])
                    q = np.uint64(2 * tx)
                    ea[q] = d0
                    ea[q + 1] = d1
                    fa[q + 2] = d2
                    fa[q + 3] = d3
            r = 2 * ty * wp
            for q in range(wp):
                d0, d1, d2, d3 = _b_times(e[0, q] + f[0, q], e[1, q] + f[1, q],
                                          e[2, q] + f[2, q], e[3, q] + f[3, q])
                canvas[r + q] += d0
                canvas[r + wp + q] += d1
                canvas[r + 2 * wp + q] += d2
                canvas[r + 3 * wp + q] += d3
        _store_cropped(canvas, dx[n, c], pt, pl, wp)


@parallel_kernel()
def _winograd_output_kernel(m, y, th, tw):
    # y[n, k, 2ty+i, 2tx+j] = (A^T M A)[i, j], M[a, b] = m[4a+b, k, t]; prange over (n, k)
    # planes, then tile rows: (.) A tile by tile into four rows e, then A^T e, two output
    # rows at once, into a canvas of whole tiles, which is cropped into y
    n_batch, k_out = y.shape[0], y.shape[1]
    wc = 2 * tw
    for p in numba.prange(n_batch * k_out):
        n = p // k_out
        k = p - n * k_out
        canvas = np.empty(2 * th * wc, dtype=y.dtype)
        e = np.empty((4, wc), dtype=y.dtype)
        for ty in range(th):
            t0 = (n * th + ty) * tw
            for a in range(4):
                ea = e[a]
                for tx in range(tw):
                    t = np.uint64(t0 + tx)
                    y0, y1 = _at_times(m[4 * a, k, t], m[4 * a + 1, k, t], m[4 * a + 2, k, t],
                                       m[4 * a + 3, k, t])
                    q = np.uint64(2 * tx)
                    ea[q] = y0
                    ea[q + 1] = y1
            r = 2 * ty * wc
            for q in range(wc):
                canvas[r + q], canvas[r + wc + q] = _at_times(e[0, q], e[1, q], e[2, q], e[3, q])
        _store_cropped(canvas, y[n, k], 0, 0, wc)


@parallel_kernel()
def _winograd_output_backward_kernel(g, dm, th, tw):
    # dm[4a+b, k, t] = (A dY A^T)[a, b], dY = the 2x2 tile of g[n, k] at (2ty, 2tx), zeros
    # past the edge; prange over (k, n) planes, then tile rows: A dY for the whole row of
    # tiles at once (2 rows -> 4), then (.) A^T tile by tile
    n_batch, k_out = g.shape[0], g.shape[1]
    wc = 2 * tw
    for p in numba.prange(k_out * n_batch):
        k = p // n_batch
        n = p - k * n_batch
        canvas = np.zeros(2 * th * wc, dtype=g.dtype)
        _load_padded(g[n, k], canvas, 0, 0, wc)
        e = np.empty((4, wc), dtype=g.dtype)
        for ty in range(th):
            r = 2 * ty * wc
            for q in range(wc):
                e[0, q], e[1, q], e[2, q], e[3, q] = _a_times(canvas[r + q], canvas[r + wc + q])
            t0 = (n * th + ty) * tw
            for a in range(4):
                ea = e[a]
                for tx in range(tw):
                    q = np.uint64(2 * tx)
                    m0, m1, m2, m3 = _a_times(ea[q], ea[q + 1])
                    t = np.uint64(t0 + tx)
                    dm[4 * a, k, t] = m0
                    dm[4 * a + 1, k, t] = m1
                    dm[4 * a + 2, k, t] = m2
                    dm[4 * a + 3, k, t] = m3


def winograd_input_transform(x, padding, out_hw, out=None):
    """Numba :func:`reference.winograd_input_transform`; ``out`` may be a reused buffer."""
    if not _floats(x):
        return reference.winograd_input_transform(x, padding, out_hw, out)
    n, c = x.shape[:2]
    th, tw = reference.winograd_tiles(out_hw)
    shape = (16, c, n * th * tw)
    v = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    _winograd_input_kernel(np.ascontiguousarray(x), v, padding[0][0], padding[1][0], th, tw)
    return v


def winograd_input_transform_backward(dv, x_shape, padding, out_hw, out=None):
    """Numba :func:`reference.winograd_input_transform_backward`; ``out``: a C-contiguous
    array to fill."""
    if not _floats(dv):
        return reference.winograd_input_transform_backward(dv, x_shape, padding, out_hw, out)
    th, tw = reference.winograd_tiles(out_hw)
    dx = np.empty(tuple(x_shape), dtype=dv.dtype) if out is None else out
    _winograd_input_backward_kernel(np.ascontiguousarray(dv), dx, padding[0][0], padding[1][0],
                                    th, tw)
    return dx


def winograd_output_transform(m, n_batch: int, out_hw, out=None):
    """Numba :func:`reference.winograd_output_transform`; ``out``: a C-contiguous array to
    fill."""
    if not _floats(m):
        return reference.winograd_output_transform(m, n_batch, out_hw, out)
    th, tw = reference.winograd_tiles(out_hw)
    shape = (n_batch, m.shape[1], int(out_hw[0]), int(out_hw[1]))
    y = np.empty(shape, dtype=m.dtype) if out is None else out.reshape(shape)
    _winograd_output_kernel(np.ascontiguousarray(m), y, th, tw)
    return y


def winograd_output_transform_backward(grad, out=None):
    """Numba :func:`reference.winograd_output_transform_backward`; ``out``: a reused buffer."""
    if not _floats(grad):
        return reference.winograd_output_transform_backward(grad)
    n, k = grad.shape[:2]
    th, tw = reference.winograd_tiles(grad.shape[2:])
    shape = (16, k, n * th * tw)
    dm = np.empty(shape, dtype=grad.dtype) if out is None else out.reshape(shape)
    _winograd_output_backward_kernel(np.ascontiguousarray(grad), dm, th, tw)
    return dm


# ---- pooling
# Same geometry arguments as the reference kernels (see reference.py, "pooling"). The
# compiled loops run over the N*C planes in parallel (prange), then over the outputs of
# a plane, then over the window; a plane is never shared between threads, so the
# backward scatters need no atomics.


def _pn_float(*arrays) -> bool:
    """True when every argument is a float32/float64 NumPy array (the compiled loops' case)."""
    return all(isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64) for a in arrays)


def _planes(x):
    """``x: (N, C, H, W)`` as a C-contiguous ``(N*C, H, W)`` array (a copy if it must)."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x).reshape(n * c, h, w)


@parallel_kernel()
def _max_pool2d_kernel(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    # out[p, y, xo] = first max of the window of (y, xo) in plane p (NaN wins), idx its h*W+w;
    # prange over planes p, then y, xo, then the window rows and columns
    n_planes, h, w = x.shape
    h_out, w_out = out.shape[1], out.shape[2]
    for p in numba.prange(n_planes):
        for y in range(h_out):
            h0 = y * sh - ph
            h1 = min(h0 + (kh - 1) * dh + 1, h)
            while h0 < 0:
                h0 += dh
            for xo in range(w_out):
                w0 = xo * sw - pw
                w1 = min(w0 + (kw - 1) * dw + 1, w)
                while w0 < 0:
                    w0 += dw
                best = -np.inf
                best_i = h0 * w + w0
                for ih in range(h0, h1, dh):
                    for iw in range(w0, w1, dw):
                        v = x[p, ih, iw]
                        if v > best or np.isnan(v):
                            best = v
                            best_i = ih * w + iw
                out[p, y, xo] = best
                idx[p, y, xo] = best_i


def max_pool2d(x, kernel, stride, padding, dilation, out_hw):
    """Numba :func:`reference.max_pool2d`."""
    if not _pn_float(x):
        return reference.max_pool2d(x, kernel, stride, padding, dilation, out_hw)
    n, c = x.shape[:2]
    planes = _planes(x)
    out = np.empty((n * c,) + tuple(out_hw), dtype=x.dtype)
    idx = np.empty((n * c,) + tuple(out_hw), dtype=np.int64)
    _max_pool2d_kernel(planes, out, idx, *(int(v) for v in (*kernel, *stride, *padding,
                                                              *dilation)))
    return out.reshape((n, c) + tuple(out_hw)), idx.reshape((n, c) + tuple(out_hw))


@parallel_kernel()
def _scatter_add_planes(g, idx, dx):  # dx[p, idx[p, o]] += g[p, o]; prange over planes p, then o
    for p in numba.prange(g.shape[0]):
        for o in range(g.shape[1]):
            dx[p, idx[p, o]] += g[p, o]


def max_pool2d_backward(grad, indices, in_hw):
    """Numba :func:`reference.max_pool2d_backward`."""
    if not _pn_float(grad):
        return reference.max_pool2d_backward(grad, indices, in_hw)
    n, c, oh, ow = grad.shape
    dx = np.zeros((n * c, in_hw[0] * in_hw[1]), dtype=grad.dtype)
    _scatter_add_planes(np.ascontiguousarray(grad).reshape(n * c, oh * ow),  # (not -1: N may be 0)
                        np.ascontiguousarray(indices, dtype=np.int64).reshape(n * c, oh * ow), dx)
    return dx.reshape((n, c) + tuple(in_hw))


def _avg_geometry(in_hw, kernel, stride, padding, out_hw, count_include_pad, divisor_override,
                  dtype):
    """Per-axis input ranges [lo, hi) of the windows and the (h_out, w_out) divisors
    (the reference's rule), computed once in NumPy so the compiled loops only add."""
    ranges = []
    for n_in, k, s, p, n_out in zip(in_hw, kernel, stride, padding, out_hw, strict=True):
        start = np.arange(n_out, dtype=np.int64) * s - p
        ranges += [np.maximum(start, 0), np.minimum(start + k, n_in)]
    divisor = reference._avg_pool_divisor(in_hw, kernel, stride, padding, out_hw,
                                          count_include_pad, divisor_override, np)
    return (*ranges, np.ascontiguousarray(np.broadcast_to(divisor, tuple(out_hw)), dtype=dtype))


@parallel_kernel()
def _avg_pool2d_kernel(x, out, h_lo, h_hi, w_lo, w_hi, divisor):
    # out[p, y, xo] = sum of x[p, h_lo[y]:h_hi[y], w_lo[xo]:w_hi[xo]] / divisor[y, xo];
    # prange over planes p, then y, xo, then the window
    for p in numba.prange(x.shape[0]):
        for y in range(out.shape[1]):
            for xo in range(out.shape[2]):
                total = x.dtype.type(0)
                for ih in range(h_lo[y], h_hi[y]):
                    for iw in range(w_lo[xo], w_hi[xo]):
                        total += x[p, ih, iw]
                out[p, y, xo] = total / divisor[y, xo]


@parallel_kernel()
def _avg_pool2d_backward_kernel(g, dx, h_lo, h_hi, w_lo, w_hi, divisor):
    # dx[p, window of (y, xo)] += g[p, y, xo] / divisor[y, xo]; prange over planes p, then
    # y, xo, then the window (a plane belongs to one thread: no races)
    for p in numba.prange(g.shape[0]):
        for y in range(g.shape[1]):
            for xo in range(g.shape[2]):
                share = g[p, y, xo] / divisor[y, xo]
                for ih in range(h_lo[y], h_hi[y]):
                    for iw in range(w_lo[xo], w_hi[xo]):
                        dx[p, ih, iw] += share


def avg_pool2d(x, kernel, stride, padding, out_hw, count_include_pad=True, divisor_override=None):
    """Numba :func:`reference.avg_pool2d`."""
    if not _pn_float(x):
        return reference.avg_pool2d(x, kernel, stride, padding, out_hw, count_include_pad,
                                    divisor_override)
    n, c = x.shape[:2]
    out = np.empty((n * c,) + tuple(out_hw), dtype=x.dtype)
    _avg_pool2d_kernel(_planes(x), out, *_avg_geometry(x.shape[2:], kernel, stride, padding,
                                                       out_hw, count_include_pad,
                                                       divisor_override, x.dtype))
    return out.reshape((n, c) + tuple(out_hw))


def avg_pool2d_backward(grad, in_hw, kernel, stride, padding, count_include_pad=True,
                        divisor_override=None):
    """Numba :func:`reference.avg_pool2d_backward`."""
    if not _pn_float(grad):
        return reference.avg_pool2d_backward(grad, in_hw, kernel, stride, padding,
                                             count_include_pad, divisor_override)
    n, c = grad.shape[:2]
    dx = np.zeros((n * c,) + tuple(in_hw), dtype=grad.dtype)
    _avg_pool2d_backward_kernel(_planes(grad), dx, *_avg_geometry(
        in_hw, kernel, stride, padding, grad.shape[2:], count_include_pad, divisor_override,
        grad.dtype))
    return dx.reshape((n, c) + tuple(in_hw))


# ---- normalization
# Same layout as the reference kernels (see reference.py, "normalization"): ``x`` viewed
# as (A, B, L), one statistic per B. The per-B loops run in parallel (prange over B) and
# accumulate in float64; the element-wise loops run in parallel over the (a, b) rows.


def _abl(x):
    """``x`` as a C-contiguous (A, B, L) float array (a copy if it must)."""
    return np.ascontiguousarray(x)


@parallel_kernel(fastmath={"reassoc"})
def _bn_stats_kernel(x, mean, var):
    # per b, ONE pass over (a, l): sums of d = x - shift and d*d with shift = x[0, b, 0]
    # (shifting by a sample keeps the one-pass variance accurate); prange over b
    n_a, n_b, n_l = x.shape
    m = n_a * n_l
    for b in numba.prange(n_b):
        shift = np.float64(x[0, b, 0])
        s = 0.0
        s2 = 0.0
        for a in range(n_a):
            for i in range(n_l):
                d = x[a, b, i] - shift
                s += d
                s2 += d * d
        mu = s / m
        mean[b] = shift + mu
        var[b] = max(s2 / m - mu * mu, 0.0)


def batch_norm_stats(x):
    """Numba :func:`reference.batch_norm_stats` (one pass per channel)."""
    if not _pn_float(x) or x.size == 0:
        return reference.batch_norm_stats(x)
    mean = np.empty(x.shape[1], dtype=x.dtype)
    var = np.empty(x.shape[1], dtype=x.dtype)
    _bn_stats_kernel(_abl(x), mean, var)
    return mean, var


@parallel_kernel()
def _bn_affine_kernel(x, alpha, beta, out):
    # out[a, b, :] = x[a, b, :] * alpha[b] + beta[b]; prange over the (a, b) rows
    n_a, n_b, n_l = x.shape
    for r in numba.prange(n_a * n_b):
        a, b = r // n_b, r % n_b
        for i in range(n_l):
            out[a, b, i] = x[a, b, i] * alpha[b] + beta[b]


def batch_norm_elemt(x, mean, invstd, weight=None, bias=None):
    """Numba :func:`reference.batch_norm_elemt` (one fused pass)."""
    if not _pn_float(x):
        return reference.batch_norm_elemt(x, mean, invstd, weight, bias)
    alpha = invstd if weight is None else invstd * weight
    beta = -mean * alpha if bias is None else bias - mean * alpha
    out = np.empty(x.shape, dtype=x.dtype)
    _bn_affine_kernel(_abl(x), alpha.astype(x.dtype), beta.astype(x.dtype), out)
    return out


@parallel_kernel(fastmath={"reassoc"})
def _bn_backward_reduce_kernel(g, x, mean, invstd, sum_dy, sum_dy_xhat):
    # per b, one pass over (a, l): sum(g) and sum(g * (x - mean)) * invstd; prange over b
    n_a, n_b, n_l = x.shape
    for b in numba.prange(n_b):
        mu = np.float64(mean[b])
        s = 0.0
        sx = 0.0
        for a in range(n_a):
            for i in range(n_l):
                dy = g[a, b, i]
                s += dy
                sx += dy * (x[a, b, i] - mu)
        sum_dy[b] = s
        sum_dy_xhat[b] = sx * invstd[b]


def batch_norm_backward_reduce(grad, x, mean, invstd):
    """Numba :func:`reference.batch_norm_backward_reduce` (one pass per channel)."""
    if not (_pn_float(x, grad)):
        return reference.batch_norm_backward_reduce(grad, x, mean, invstd)
    sum_dy = np.empty(x.shape[1], dtype=grad.dtype)
    sum_dy_xhat = np.empty(x.shape[1], dtype=grad.dtype)
    _bn_backward_reduce_kernel(_abl(grad), _abl(x), mean, invstd, sum_dy, sum_dy_xhat)
    return sum_dy, sum_dy_xhat


@parallel_kernel()
def _bn_backward_elemt_kernel(g, x, mean, invstd, scale, mean_dy, mean_dy_xhat, dx):
    # dx = scale[b] * (g - mean_dy[b] - (x - mean[b]) * invstd[b] * mean_dy_xhat[b]);
    # prange over the (a, b) rows
    n_a, n_b, n_l = x.shape
    for r in numba.prange(n_a * n_b):
        a, b = r // n_b, r % n_b
        for i in range(n_l):
            xhat = (x[a, b, i] - mean[b]) * invstd[b]
            dx[a, b, i] = scale[b] * (g[a, b, i] - mean_dy[b] - xhat * mean_dy_xhat[b])


def batch_norm_backward_elemt(grad, x, mean, invstd, weight, sum_dy, sum_dy_xhat):
    """Numba :func:`reference.batch_norm_backward_elemt` (one fused pass)."""
    if not (_pn_float(x, grad)):
        return reference.batch_norm_backward_elemt(grad, x, mean, invstd, weight, sum_dy,
                                                   sum_dy_xhat)
    m = x.shape[0] * x.shape[2]
    dt = grad.dtype
    scale = invstd if weight is None else invstd * weight
    dx = np.empty(x.shape, dtype=dt)
    _bn_backward_elemt_kernel(_abl(grad), _abl(x), mean.astype(dt), invstd.astype(dt),
                              scale.astype(dt), (sum_dy / m).astype(dt),
                              (sum_dy_xhat / m).astype(dt), dx)
    return dx


@parallel_kernel()
def _lrn_forward_kernel(x, out, scale, size, alpha_n, beta, k):
    # scale[n, c, :] = k + alpha/size * sum of x^2 over channels c - size//2 .. c + (size-1)//2,
    # out = x / scale**beta, in x's dtype; prange over the (n, c) rows, then window channels,
    # then positions (contiguous: the inner loops vectorize)
    n_n, n_c, n_l = x.shape
    before = size // 2
    for r in numba.prange(n_n * n_c):
        n, c = r // n_c, r % n_c
        acc = np.zeros(n_l, dtype=x.dtype)
        for cc in range(max(c - before, 0), min(c - before + size, n_c)):
            for i in range(n_l):
                acc[i] += x[n, cc, i] * x[n, cc, i]
        for i in range(n_l):
            s = acc[i] * alpha_n + k
            scale[n, c, i] = s
            out[n, c, i] = x[n, c, i] / s**beta


def _lrn_scalars(dtype, *values):
    """The float parameters in the array's dtype, so float32 arrays get float32 math."""
    return tuple(dtype.type(v) for v in values)


def local_response_norm(x, size: int, alpha: float, beta: float, k: float):
    """Numba :func:`reference.local_response_norm`; ``x: (N, C, *)``."""
    if not _pn_float(x) or x.ndim < 3 or x.size == 0:
        return reference.local_response_norm(x, size, alpha, beta, k)
    x3 = _abl(x).reshape(x.shape[0], x.shape[1], -1)
    out, scale = np.empty_like(x3), np.empty_like(x3)
    _lrn_forward_kernel(x3, out, scale, int(size), *_lrn_scalars(x.dtype, alpha / size, beta, k))
    return out.reshape(x.shape), scale.reshape(x.shape)


@parallel_kernel()
def _lrn_backward_kernel(g, x, out, scale, dx, size, beta, factor):
    # dx = g / scale**beta - factor * x * sum of g*out/scale over channels
    # c - (size-1)//2 .. c + size//2 (the windows channel c is in), factor = 2*alpha*beta/size;
    # in x's dtype; prange over the (n, c) rows, then window channels, then positions
    n_n, n_c, n_l = x.shape
    before = (size - 1) // 2
    for r in numba.prange(n_n * n_c):
        n, c = r // n_c, r % n_c
        acc = np.zeros(n_l, dtype=x.dtype)
        for cc in range(max(c - before, 0), min(c - before + size, n_c)):
            for i in range(n_l):
                acc[i] += g[n, cc, i] * out[n, cc, i] / scale[n, cc, i]
        for i in range(n_l):
            dx[n, c, i] = g[n, c, i] / scale[n, c, i] ** beta - factor * x[n, c, i] * acc[i]


def local_response_norm_backward(grad, x, out, scale, size: int, alpha: float, beta: float):
    """Numba :func:`reference.local_response_norm_backward`."""
    if not _pn_float(x, grad, out, scale) or len({a.dtype for a in (x, grad, out, scale)}) > 1 \
            or x.ndim < 3 or x.size == 0:
        return reference.local_response_norm_backward(grad, x, out, scale, size, alpha, beta)
    shape3 = (x.shape[0], x.shape[1], -1)
    g3, x3 = _abl(grad).reshape(shape3), _abl(x).reshape(shape3)
    o3, s3 = _abl(out).reshape(shape3), _abl(scale).reshape(shape3)
    dx = np.empty_like(x3)
    _lrn_backward_kernel(g3, x3, o3, s3, dx, int(size),
                         *_lrn_scalars(x.dtype, beta, 2.0 * alpha * beta / size))
    return dx.reshape(x.shape)


# ---- upsampling


@parallel_kernel()
def _upsample_nearest_planes(x, src_h, src_w, out):
    # out[p, i, j] = x[p, src_h[i], src_w[j]]; prange over (n, c) planes, then rows, columns
    for p in numba.prange(out.shape[0]):
        for i in range(out.shape[1]):
            row = src_h[i]
            for j in range(out.shape[2]):
                out[p, i, j] = x[p, row, src_w[j]]


@parallel_kernel()
def _upsample_nearest_backward_planes(grad, src_h, src_w, out):
    # out[p, src_h[i], src_w[j]] += grad[p, i, j]; prange over planes (each owns its output)
    for p in numba.prange(grad.shape[0]):
        for i in range(grad.shape[1]):
            row = src_h[i]
            for j in range(grad.shape[2]):
                out[p, row, src_w[j]] += grad[p, i, j]


def _nearest_fast(a, src_h, src_w) -> bool:
    return a.dtype in (np.float32, np.float64) and isinstance(src_h, np.ndarray) and a.ndim == 4


def upsample_nearest(x, src_h, src_w):
    """Nearest-neighbour gather (see the reference); fast case: float32/float64 input."""
    if not _nearest_fast(x, src_h, src_w):
        return reference.upsample_nearest(x, src_h, src_w)
    n, c, h, w = x.shape
    out = np.empty((n * c, src_h.shape[0], src_w.shape[0]), dtype=x.dtype)
    planes = np.ascontiguousarray(x).reshape(n * c, h, w)
    _upsample_nearest_planes(planes, src_h.astype(np.int64), src_w.astype(np.int64), out)
    return out.reshape(n, c, src_h.shape[0], src_w.shape[0])


def upsample_nearest_backward(grad, in_hw, src_h, src_w):
    """Scatter-add of the gradient to the source pixels (see the reference); fast case: floats."""
    if not _nearest_fast(grad, src_h, src_w):
        return reference.upsample_nearest_backward(grad, in_hw, src_h, src_w)
    n, c, h_out, w_out = grad.shape
    out = np.zeros((n * c,) + tuple(in_hw), dtype=grad.dtype)
    planes = np.ascontiguousarray(grad).reshape(n * c, h_out, w_out)
    _upsample_nearest_backward_planes(planes, src_h.astype(np.int64), src_w.astype(np.int64), out)
    return out.reshape((n, c) + tuple(in_hw))

# ---------------------------------------------------------------- non-maximum suppression


@numba.njit(cache=True)
def _nms_sorted(b, iou_threshold):  # greedy NMS over boxes b (N, 4) already sorted by score
    # outer loop: boxes in score order; a kept box i suppresses every later box j whose IoU
    # with it exceeds the threshold (inner loop over j > i). Returns a keep mask.
    n = b.shape[0]
    suppressed = np.zeros(n, dtype=np.bool_)
    keep = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if suppressed[i]:
            continue
        keep[i] = True
        area_i = (b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1])
        for j in range(i + 1, n):
            if suppressed[j]:
                continue
            w = max(min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]), 0)
            h = max(min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]), 0)
            inter = w * h
            union = area_i + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
            if union != 0 and inter / union > iou_threshold:
                suppressed[j] = True
    return keep


def nms(boxes, scores, iou_threshold: float):
    """Compiled :func:`reference.nms`: same sort, the greedy pass as scalar loops."""
    if boxes.dtype.kind != "f":
        return reference.nms(boxes, scores, iou_threshold)
    order = reference.nms_order(scores, np)
    b = np.ascontiguousarray(boxes[order])
    keep = _nms_sorted(b, b.dtype.type(iou_threshold))
    return order[keep].astype(np.int64)


# ---- RoI pooling
# The weights and bins come from the reference (vectorized, cheap: a few numbers per RoI
# and bin); the compiled loops do the work over channels. Forward runs over the RoIs in
# parallel (prange), backward over the channels, so that no two threads add into the same
# plane of the gradient.


@parallel_kernel()
def _roi_align_kernel(x, batch, wy, y0, y1, wx, x0, x1, count, out):
    # out[k, c, p, q] = sum over rows r, columns s of wy[k, p, r] wx[k, q, s] x[batch[k], c, r, s]
    # / count[k]; prange over RoIs k, then channels c, bins (p, q), rows r, columns s
    for k in numba.prange(out.shape[0]):
        b = batch[k]
        for c in range(out.shape[1]):
            for p in range(out.shape[2]):
                for q in range(out.shape[3]):
                    acc = 0.0
                    for r in range(y0[k, p], y1[k, p]):
                        row = 0.0
                        for s in range(x0[k, q], x1[k, q]):
                            row += wx[k, q, s] * x[b, c, r, s]
                        acc += wy[k, p, r] * row
                    out[k, c, p, q] = acc / count[k]


@parallel_kernel()
def _roi_align_backward_kernel(g, batch, wy, y0, y1, wx, x0, x1, count, dx):
    # dx[batch[k], c, r, s] += g[k, c, p, q] wy[k, p, r] wx[k, q, s] / count[k];
    # prange over channels c, then RoIs k, bins (p, q), rows r, columns s
    for c in numba.prange(g.shape[1]):
        for k in range(g.shape[0]):
            b = batch[k]
            for p in range(g.shape[2]):
                for q in range(g.shape[3]):
                    gv = g[k, c, p, q] / count[k]
                    for r in range(y0[k, p], y1[k, p]):
                        gr = gv * wy[k, p, r]
                        for s in range(x0[k, q], x1[k, q]):
                            dx[b, c, r, s] += gr * wx[k, q, s]


def _roi_align_geometry(rois, output_size, x_shape, spatial_scale, sampling_ratio, aligned):
    """The reference's weights with the run of cells each bin reads, and the batch indices."""
    wy, wx, count = reference.roi_align_weights(rois, output_size, x_shape, spatial_scale,
                                                sampling_ratio, aligned)
    return (rois[:, 0].astype(np.int64), wy, *reference.roi_align_support(wy), wx,
            *reference.roi_align_support(wx), count)


def roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Numba :func:`reference.roi_align`."""
    if not _pn_float(x, rois) or x.dtype != rois.dtype:
        return reference.roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    out = np.empty((rois.shape[0], x.shape[1]) + tuple(output_size), dtype=x.dtype)
    _roi_align_kernel(np.ascontiguousarray(x), *_roi_align_geometry(
        rois, output_size, x.shape, spatial_scale, sampling_ratio, aligned), out)
    return out


def roi_align_backward(grad, rois, x_shape, spatial_scale, sampling_ratio, aligned):
    """Numba :func:`reference.roi_align_backward`."""
    if not _pn_float(grad, rois) or grad.dtype != rois.dtype:
        return reference.roi_align_backward(grad, rois, x_shape, spatial_scale, sampling_ratio,
                                            aligned)
    dx = np.zeros(x_shape, dtype=grad.dtype)
    _roi_align_backward_kernel(np.ascontiguousarray(grad), *_roi_align_geometry(
        rois, grad.shape[2:], x_shape, spatial_scale, sampling_ratio, aligned), dx)
    return dx


@parallel_kernel()
def _roi_pool_kernel(x, batch, h_lo, h_hi, w_lo, w_hi, flt_max, out, argmax):
    # out[k, c, p, q] = the first maximum of bin (p, q) of RoI k in plane (batch[k], c), argmax
    # its h * W + w; an empty bin gives 0 and -1; prange over RoIs k, then c, p, q, the bin
    w = x.shape[3]
    for k in numba.prange(out.shape[0]):
        b = batch[k]
        for c in range(out.shape[1]):
            for p in range(out.shape[2]):
                for q in range(out.shape[3]):
                    empty = h_hi[k, p] <= h_lo[k, p] or w_hi[k, q] <= w_lo[k, q]
                    best = 0.0 if empty else -flt_max
                    best_i = -1
                    for r in range(h_lo[k, p], h_hi[k, p]):
                        for s in range(w_lo[k, q], w_hi[k, q]):
                            if x[b, c, r, s] > best:
                                best = x[b, c, r, s]
                                best_i = r * w + s
                    out[k, c, p, q] = best
                    argmax[k, c, p, q] = best_i


@parallel_kernel()
def _roi_pool_backward_kernel(g, argmax, batch, dx):
    # dx[batch[k], c, argmax[k, c, o]] += g[k, c, o] (nothing where argmax < 0); prange over
    # channels c, then RoIs k and outputs o
    for c in numba.prange(g.shape[1]):
        for k in range(g.shape[0]):
            for o in range(g.shape[2]):
                if argmax[k, c, o] >= 0:
                    dx[batch[k], c, argmax[k, c, o]] += g[k, c, o]


def roi_pool(x, rois, output_size, spatial_scale):
    """Numba :func:`reference.roi_pool`."""
    if not _pn_float(x, rois) or x.dtype != rois.dtype:
        return reference.roi_pool(x, rois, output_size, spatial_scale)
    shape = (rois.shape[0], x.shape[1]) + tuple(output_size)
    out = np.empty(shape, dtype=x.dtype)
    argmax = np.empty(shape, dtype=np.int64)
    h_lo, h_hi = reference.roi_pool_bins(rois, output_size[0], x.shape[2], spatial_scale, axis=1)
    w_lo, w_hi = reference.roi_pool_bins(rois, output_size[1], x.shape[3], spatial_scale, axis=0)
    _roi_pool_kernel(np.ascontiguousarray(x), rois[:, 0].astype(np.int64), h_lo, h_hi, w_lo,
                     w_hi, reference.FLT_MAX, out, argmax)
    return out, argmax


def roi_pool_backward(grad, argmax, rois, x_shape):
    """Numba :func:`reference.roi_pool_backward`."""
    if not _pn_float(grad):
        return reference.roi_pool_backward(grad, argmax, rois, x_shape)
    k, c, oh, ow = grad.shape
    n, _, h, w = x_shape
    dx = np.zeros((n, c, h * w), dtype=grad.dtype)
    _roi_pool_backward_kernel(np.ascontiguousarray(grad).reshape(k, c, oh * ow),
                              np.ascontiguousarray(argmax).reshape(k, c, oh * ow),
                              rois[:, 0].astype(np.int64), dx)
    return dx.reshape(x_shape)


KERNELS = {
    "roi_align": roi_align,
    "roi_align_backward": roi_align_backward,
    "roi_pool": roi_pool,
    "roi_pool_backward": roi_pool_backward,
    "nms": nms,
    "max_pool2d": max_pool2d,
    "max_pool2d_backward": max_pool2d_backward,
    "avg_pool2d": avg_pool2d,
    "avg_pool2d_backward": avg_pool2d_backward,
    "batch_norm_stats": batch_norm_stats,
    "batch_norm_elemt": batch_norm_elemt,
    "batch_norm_backward_reduce": batch_norm_backward_reduce,
    "batch_norm_backward_elemt": batch_norm_backward_elemt,
    "local_response_norm": local_response_norm,
    "local_response_norm_backward": local_response_norm_backward,
    "index_add": index_add,
    "where": where,
    "relu": relu,
    "relu_backward": relu_backward,
    "im2col": im2col,
    "col2im": col2im,
    # depthwise is grouped with one input channel per group: the grouped kernels measured as
    # fast as the depthwise ones they replaced (2x faster on a stride-2 weight gradient)
    "depthwise_conv2d": grouped_conv2d,
    "depthwise_conv2d_backward_input": grouped_conv2d_backward_input,
    "depthwise_conv2d_backward_weight": depthwise_conv2d_backward_weight,
    "grouped_conv2d": grouped_conv2d,
    "grouped_conv2d_backward_input": grouped_conv2d_backward_input,
    "grouped_conv2d_backward_weight": grouped_conv2d_backward_weight,
    "winograd_input_transform": winograd_input_transform,
    "winograd_input_transform_backward": winograd_input_transform_backward,
    "winograd_output_transform": winograd_output_transform,
    "winograd_output_transform_backward": winograd_output_transform_backward,
    "erf": erf,
    "log_softmax": log_softmax,
    "upsample_nearest": upsample_nearest,
    "upsample_nearest_backward": upsample_nearest_backward,
}
