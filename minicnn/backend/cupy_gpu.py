"""CuPy GPU kernels. Importing this module imports CuPy; anything not here uses ``reference.py``.

CuPy mirrors NumPy's API, so most reference kernels run on the GPU unchanged. This
file holds what must differ on the GPU and hand-written RawKernels for the hot paths
(pooling, batch-norm reductions, LRN, im2col/col2im, depthwise convolution), each
compiled once per dtype by :func:`_kernel` and launched one thread per element by
:func:`_launch`. The tests run every kernel here on the CPU too, through an emulation of
CuPy that compiles the same CUDA C source (tests/cupy_emulation), so keep kernels to
plain CUDA C: indexing, loops, ``__shared__`` arrays of fixed size and ``__syncthreads``,
atomics; no warp shuffles or votes.
"""

from __future__ import annotations

import functools

import cupy
import cupyx
import cupyx.scipy.special
import numpy

from minicnn.backend import reference


def gpu_available() -> bool:
    """True when CuPy can see at least one CUDA device."""
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device, or a broken CUDA install
        return False


def index_add(target, index, values) -> None:
    """In place ``target[index] += values`` with repeats accumulated, by atomic adds."""
    cupyx.scatter_add(target, index, values)


def erf(x):
    """``erf`` element-wise by CUDA's own erf (through ``cupyx.scipy.special``)."""
    return cupyx.scipy.special.erf(x)


# ---- pooling
# RawKernels mirroring the Numba loops (see numba_cpu.py, "pooling"): one thread per
# output cell for the forward passes. Average pooling's backward is a gather, one thread
# per input cell looping over the windows that hold it (no atomics, deterministic); max
# pooling's backward is a scatter-add by atomics. Each kernel is compiled once per dtype.

_CTYPES = {"float32": "float", "float64": "double"}
_THREADS = 256  # threads per block of the one-thread-per-element kernels


@functools.cache
def _module(dtype: str, source: str):
    """``source`` compiled with ``T`` the C type of ``dtype``: once per source and dtype."""
    return cupy.RawModule(code=f"typedef {_CTYPES[dtype]} T;\n" + source)


@functools.cache
def _kernel(name: str, dtype: str, source: str):
    """The kernel ``name`` of ``source`` for ``dtype`` (float32 or float64), looked up once."""
    return _module(dtype, source).get_function(name)


def _float_gpu(*arrays) -> bool:
    """True when all ``arrays`` are CuPy arrays of one floating dtype the kernels compile for."""
    return (all(isinstance(a, cupy.ndarray) and a.dtype.name in _CTYPES for a in arrays)
            and len({a.dtype for a in arrays}) == 1)


def _launch(kernel, n_threads: int, args) -> None:
    """Run ``kernel`` with one thread per element: ``n_threads`` threads in blocks of 256."""
    if n_threads > 0:
        kernel(((n_threads + _THREADS - 1) // _THREADS,), (_THREADS,), args)


_MAX_POOL_SRC = r"""
extern "C" __global__ void max_pool2d_fwd(
    const T* x, T* out, long long* idx, long long total, int h, int w, int h_out, int w_out,
    int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw) {
  // out[p, y, xo] = first max of its window (NaN wins), idx = h*W + w of it
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  int xo = t % w_out;
  int y = (t / w_out) % h_out;
  long long p = t / ((long long)w_out * h_out);
  int h0 = y * sh - ph, w0 = xo * sw - pw;
  int h1 = min(h0 + (kh - 1) * dh + 1, h), w1 = min(w0 + (kw - 1) * dw + 1, w);
  while (h0 < 0) h0 += dh;
  while (w0 < 0) w0 += dw;
  const T* plane = x + p * h * w;
  T best = (T)(-__longlong_as_double(0x7ff0000000000000ULL));  // -inf
  long long best_i = (long long)h0 * w + w0;
  for (int ih = h0; ih < h1; ih += dh) {
    for (int iw = w0; iw < w1; iw += dw) {
      T v = plane[ih * w + iw];
      if (v > best || isnan(v)) { best = v; best_i = (long long)ih * w + iw; }
    }
  }
  out[t] = best;
  idx[t] = best_i;
}
"""


def max_pool2d(x, kernel, stride, padding, dilation, out_hw):
    """CUDA :func:`reference.max_pool2d`."""
    if not _float_gpu(x):
        return reference.max_pool2d(x, kernel, stride, padding, dilation, out_hw)
    n, c, h, w = x.shape
    shape = (n, c) + tuple(out_hw)
    out = cupy.empty(shape, dtype=x.dtype)
    idx = cupy.empty(shape, dtype=cupy.int64)
    geometry = [numpy.int32(v) for v in (h, w, *out_hw, *kernel, *stride, *padding, *dilation)]
    _launch(_kernel("max_pool2d_fwd", x.dtype.name, _MAX_POOL_SRC), out.size,
            (cupy.ascontiguousarray(x), out, idx, numpy.int64(out.size), *geometry))
    return out, idx


def max_pool2d_backward(grad, indices, in_hw):
    """CUDA :func:`reference.max_pool2d_backward`: a scatter-add by atomic adds."""
    if not _float_gpu(grad):
        return reference.max_pool2d_backward(grad, indices, in_hw)
    n, c = grad.shape[:2]
    plane = in_hw[0] * in_hw[1]
    dx = cupy.zeros((n * c, plane), dtype=grad.dtype)
    rows = cupy.arange(n * c).reshape(n, c, 1, 1) * plane + indices
    cupyx.scatter_add(dx.reshape(-1), rows.reshape(-1), grad.reshape(-1))
    return dx.reshape((n, c) + tuple(in_hw))


_AVG_POOL_SRC = r"""
__device__ inline void avg_window(int o, int n_in, int k, int s, int p, int include_pad,
                                  int* lo, int* hi, int* size) {
  // the input range [lo, hi) of window o along one axis and its size for the divisor
  int a = o * s - p;
  int b = min(a + k, n_in + p);
  *size = b - a;
  *lo = max(a, 0);
  *hi = min(b, n_in);
  if (!include_pad) *size = *hi - *lo;
}

extern "C" __global__ void avg_pool2d_fwd(
    const T* x, T* out, long long total, int h, int w, int h_out, int w_out,
    int kh, int kw, int sh, int sw, int ph, int pw, int include_pad, int divisor) {
  // out[p, y, xo] = window sum / PyTorch's divisor (divisor > 0: divisor_override)
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  int xo = t % w_out;
  int y = (t / w_out) % h_out;
  long long p = t / ((long long)w_out * h_out);
  int h0, h1, size_h, w0, w1, size_w;
  avg_window(y, h, kh, sh, ph, include_pad, &h0, &h1, &size_h);
  avg_window(xo, w, kw, sw, pw, include_pad, &w0, &w1, &size_w);
  const T* plane = x + p * h * w;
  T acc = 0;
  for (int ih = h0; ih < h1; ++ih)
    for (int iw = w0; iw < w1; ++iw) acc += plane[ih * w + iw];
  out[t] = acc / (T)(divisor > 0 ? divisor : size_h * size_w);
}

extern "C" __global__ void avg_pool2d_bwd(
    const T* g, T* dx, long long total, int h, int w, int h_out, int w_out,
    int kh, int kw, int sh, int sw, int ph, int pw, int include_pad, int divisor) {
  // dx[p, ih, iw] = sum over the windows holding (ih, iw) of g / that window's divisor
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  int iw = t % w;
  int ih = (t / w) % h;
  long long p = t / ((long long)w * h);
  int y0 = (ih + ph < kh) ? 0 : (ih + ph - kh) / sh + 1;
  int y1 = min((ih + ph) / sh + 1, h_out);
  int x0 = (iw + pw < kw) ? 0 : (iw + pw - kw) / sw + 1;
  int x1 = min((iw + pw) / sw + 1, w_out);
  const T* gp = g + p * h_out * w_out;
  T acc = 0;
  for (int y = y0; y < y1; ++y) {
    int h0, h1, size_h;
    avg_window(y, h, kh, sh, ph, include_pad, &h0, &h1, &size_h);
    for (int xo = x0; xo < x1; ++xo) {
      int w0, w1, size_w;
      avg_window(xo, w, kw, sw, pw, include_pad, &w0, &w1, &size_w);
      acc += gp[y * w_out + xo] / (T)(divisor > 0 ? divisor : size_h * size_w);
    }
  }
  dx[t] = acc;
}
"""


def _avg_geometry(kernel, stride, padding, count_include_pad, divisor_override):
    return (*(numpy.int32(v) for v in (*kernel, *stride, *padding)),
            numpy.int32(bool(count_include_pad)), numpy.int32(divisor_override or 0))


def avg_pool2d(x, kernel, stride, padding, out_hw, count_include_pad=True, divisor_override=None):
    """CUDA :func:`reference.avg_pool2d`."""
    if not _float_gpu(x):
        return reference.avg_pool2d(x, kernel, stride, padding, out_hw, count_include_pad,
                                    divisor_override)
    n, c, h, w = x.shape
    out = cupy.empty((n, c) + tuple(out_hw), dtype=x.dtype)
    _launch(_kernel("avg_pool2d_fwd", x.dtype.name, _AVG_POOL_SRC), out.size,
            (cupy.ascontiguousarray(x), out, numpy.int64(out.size),
             *(numpy.int32(v) for v in (h, w, *out_hw)),
             *_avg_geometry(kernel, stride, padding, count_include_pad, divisor_override)))
    return out


def avg_pool2d_backward(grad, in_hw, kernel, stride, padding, count_include_pad=True,
                        divisor_override=None):
    """CUDA :func:`reference.avg_pool2d_backward` (a gather: no atomics)."""
    if not _float_gpu(grad):
        return reference.avg_pool2d_backward(grad, in_hw, kernel, stride, padding,
                                             count_include_pad, divisor_override)
    n, c, h_out, w_out = grad.shape
    dx = cupy.empty((n, c) + tuple(in_hw), dtype=grad.dtype)
    _launch(_kernel("avg_pool2d_bwd", grad.dtype.name, _AVG_POOL_SRC), dx.size,
            (cupy.ascontiguousarray(grad), dx, numpy.int64(dx.size),
             *(numpy.int32(v) for v in (*in_hw, h_out, w_out)),
             *_avg_geometry(kernel, stride, padding, count_include_pad, divisor_override)))
    return dx


# ---- normalization
# Per-B sums (see reference.py, "normalization", for the (A, B, L) layout): one block of
# 256 threads per b, each thread strides over the A*L elements of b accumulating in
# double, then a tree reduction in shared memory. Statistics use sums shifted by the
# first element of b (one pass, like the Numba kernel). LRN: one thread per element.

_BN_SRC = r"""
#define BLOCK 256
__device__ inline void block_sum2(double* s1, double* s2) {
  // tree-reduce the two shared arrays of BLOCK partial sums into element 0
  for (int half = BLOCK / 2; half > 0; half >>= 1) {
    __syncthreads();
    if (threadIdx.x < half) {
      s1[threadIdx.x] += s1[threadIdx.x + half];
      s2[threadIdx.x] += s2[threadIdx.x + half];
    }
  }
  __syncthreads();
}

extern "C" __global__ void bn_stats(const T* x, T* mean, T* var, int n_a, int n_b,
                                    long long n_l) {
  // block b: mean and biased variance of x[:, b, :] from shifted sums
  __shared__ double s1[BLOCK];
  __shared__ double s2[BLOCK];
  int b = blockIdx.x;
  long long m = (long long)n_a * n_l;
  double shift = (double)x[(long long)b * n_l];
  double a1 = 0.0, a2 = 0.0;
  for (long long i = threadIdx.x; i < m; i += BLOCK) {
    long long a = i / n_l, l = i % n_l;
    double d = (double)x[(a * n_b + b) * n_l + l] - shift;
    a1 += d;
    a2 += d * d;
  }
  s1[threadIdx.x] = a1;
  s2[threadIdx.x] = a2;
  block_sum2(s1, s2);
  if (threadIdx.x == 0) {
    double mu = s1[0] / m;
    mean[b] = (T)(shift + mu);
    var[b] = (T)fmax(s2[0] / m - mu * mu, 0.0);
  }
}

extern "C" __global__ void bn_backward_reduce(const T* g, const T* x, const T* mean,
                                              const T* invstd, T* sum_dy, T* sum_dy_xhat,
                                              int n_a, int n_b, long long n_l) {
  // block b: sum(g) and sum(g * (x - mean)) * invstd over x[:, b, :]
  __shared__ double s1[BLOCK];
  __shared__ double s2[BLOCK];
  int b = blockIdx.x;
  long long m = (long long)n_a * n_l;
  double mu = (double)mean[b];
  double a1 = 0.0, a2 = 0.0;
  for (long long i = threadIdx.x; i < m; i += BLOCK) {
    long long a = i / n_l, l = i % n_l;
    long long j = (a * n_b + b) * n_l + l;
    double dy = (double)g[j];
    a1 += dy;
    a2 += dy * ((double)x[j] - mu);
  }
  s1[threadIdx.x] = a1;
  s2[threadIdx.x] = a2;
  block_sum2(s1, s2);
  if (threadIdx.x == 0) {
    sum_dy[b] = (T)s1[0];
    sum_dy_xhat[b] = (T)(s2[0] * (double)invstd[b]);
  }
}
"""


def batch_norm_stats(x):
    """CUDA :func:`reference.batch_norm_stats` (one block per channel, one pass)."""
    if not _float_gpu(x) or x.size == 0:
        return reference.batch_norm_stats(x)
    n_a, n_b, n_l = x.shape
    mean = cupy.empty(n_b, dtype=x.dtype)
    var = cupy.empty(n_b, dtype=x.dtype)
    _kernel("bn_stats", x.dtype.name, _BN_SRC)(
        (n_b,), (256,), (cupy.ascontiguousarray(x), mean, var, numpy.int32(n_a),
                         numpy.int32(n_b), numpy.int64(n_l)))
    return mean, var


def batch_norm_backward_reduce(grad, x, mean, invstd):
    """CUDA :func:`reference.batch_norm_backward_reduce` (one block per channel)."""
    if not _float_gpu(grad, x) or x.size == 0:
        return reference.batch_norm_backward_reduce(grad, x, mean, invstd)
    n_a, n_b, n_l = x.shape
    dt = x.dtype
    sum_dy = cupy.empty(n_b, dtype=dt)
    sum_dy_xhat = cupy.empty(n_b, dtype=dt)
    _kernel("bn_backward_reduce", dt.name, _BN_SRC)(
        (n_b,), (256,), (cupy.ascontiguousarray(grad), cupy.ascontiguousarray(x),
                         cupy.ascontiguousarray(mean, dtype=dt),
                         cupy.ascontiguousarray(invstd, dtype=dt), sum_dy, sum_dy_xhat,
                         numpy.int32(n_a), numpy.int32(n_b), numpy.int64(n_l)))
    return sum_dy, sum_dy_xhat


_LRN_SRC = r"""
extern "C" __global__ void lrn_fwd(const T* x, T* out, T* scale, long long total, int n_c,
                                   long long n_l, int size, double alpha, double beta,
                                   double k) {
  // scale = k + alpha/size * sum of x^2 over channels c - size/2 .. c + (size-1)/2,
  // out = x / scale^beta; one thread per element (n, c, l)
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  int c = (t / n_l) % n_c;
  long long base = t - ((long long)c * n_l);  // element (n, 0, l)
  int lo = max(c - size / 2, 0), hi = min(c - size / 2 + size, n_c);
  double acc = 0.0;
  for (int cc = lo; cc < hi; ++cc) {
    double v = (double)x[base + (long long)cc * n_l];
    acc += v * v;
  }
  double s = acc / size * alpha + k;
  scale[t] = (T)s;
  out[t] = (T)((double)x[t] / pow(s, beta));
}

extern "C" __global__ void lrn_bwd(const T* g, const T* x, const T* out, const T* scale,
                                   T* dx, long long total, int n_c, long long n_l, int size,
                                   double alpha, double beta) {
  // dx = g / scale^beta - 2*alpha*beta/size * x * sum of g*out/scale over channels
  // c - (size-1)/2 .. c + size/2; one thread per element (n, c, l)
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  int c = (t / n_l) % n_c;
  long long base = t - ((long long)c * n_l);
  int before = (size - 1) / 2;
  int lo = max(c - before, 0), hi = min(c - before + size, n_c);
  double acc = 0.0;
  for (int cc = lo; cc < hi; ++cc) {
    long long j = base + (long long)cc * n_l;
    acc += (double)g[j] * (double)out[j] / (double)scale[j];
  }
  dx[t] = (T)((double)g[t] / pow((double)scale[t], beta)
              - 2.0 * alpha * beta / size * (double)x[t] * acc);
}
"""


def local_response_norm(x, size: int, alpha: float, beta: float, k: float):
    """CUDA :func:`reference.local_response_norm`; ``x: (N, C, *)``."""
    if not _float_gpu(x) or x.ndim < 3:
        return reference.local_response_norm(x, size, alpha, beta, k)
    x = cupy.ascontiguousarray(x)
    out, scale = cupy.empty_like(x), cupy.empty_like(x)
    n_l = x.size // max(x.shape[0] * x.shape[1], 1)
    _launch(_kernel("lrn_fwd", x.dtype.name, _LRN_SRC), x.size,
            (x, out, scale, numpy.int64(x.size), numpy.int32(x.shape[1]), numpy.int64(n_l),
             numpy.int32(size), numpy.float64(alpha), numpy.float64(beta), numpy.float64(k)))
    return out, scale


def local_response_norm_backward(grad, x, out, scale, size: int, alpha: float, beta: float):
    """CUDA :func:`reference.local_response_norm_backward`."""
    if not _float_gpu(grad, x, out, scale) or x.ndim < 3:
        return reference.local_response_norm_backward(grad, x, out, scale, size, alpha, beta)
    dx = cupy.empty(x.shape, dtype=x.dtype)
    n_l = x.size // max(x.shape[0] * x.shape[1], 1)
    _launch(_kernel("lrn_bwd", x.dtype.name, _LRN_SRC), x.size,
            (cupy.ascontiguousarray(grad), cupy.ascontiguousarray(x), cupy.ascontiguousarray(out),
             cupy.ascontiguousarray(scale), dx, numpy.int64(x.size), numpy.int32(x.shape[1]),
             numpy.int64(n_l), numpy.int32(size), numpy.float64(alpha), numpy.float64(beta)))
    return dx


# ---- convolution
# CUDA versions of the Numba convolution kernels (same geometry arguments; see
# reference.py, "convolution"). One source, compiled once per dtype into a RawModule
# (module-level cache): im2col and depthwise forward run one thread per output element;
# col2im and depthwise backward-input gather (one thread per input pixel sums every entry
# that read it), so no atomics are needed; depthwise backward-weight runs one block per
# weight element with a shared-memory tree reduction.

_CONV_SOURCE = r"""
// cols[(c*kh+i)*kw+j, (n*Ho+y)*Wo+x] = x[n, c, y*sh+i*dh-pt, x*sw+j*dw-pl] (0 outside)
extern "C" __global__ void im2col(const T* x, T* cols, long long total, int N, int C, int H,
        int W, int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    long long ncols = (long long)N * Ho * Wo;
    long long r = idx / ncols, col = idx % ncols;
    int xo = col % Wo, y = (col / Wo) % Ho, n = col / ((long long)Ho * Wo);
    int j = r % kw, i = (r / kw) % kh, c = r / ((long long)kh * kw);
    int iy = y * sh + i * dh - pt, ix = xo * sw + j * dw - pl;
    cols[idx] = (iy >= 0 && iy < H && ix >= 0 && ix < W)
        ? x[(((long long)n * C + c) * H + iy) * W + ix] : (T)0;
}

// dx[n, c, iy, ix] = sum of the cols entries read from (iy, ix): one thread per pixel
extern "C" __global__ void col2im(const T* cols, T* dx, long long total, int N, int C, int H,
        int W, int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int ix = idx % W, iy = (idx / W) % H;
    long long nc = idx / ((long long)H * W);
    int c = nc % C, n = nc / C;
    long long ncols = (long long)N * Ho * Wo;
    T acc = 0;
    for (int i = 0; i < kh; ++i) {
        int ty = iy + pt - i * dh;
        if (ty < 0 || ty % sh) continue;
        int y = ty / sh;
        if (y >= Ho) continue;
        for (int j = 0; j < kw; ++j) {
            int tx = ix + pl - j * dw;
            if (tx < 0 || tx % sw) continue;
            int xo = tx / sw;
            if (xo >= Wo) continue;
            long long r = ((long long)c * kh + i) * kw + j;
            acc += cols[r * ncols + ((long long)n * Ho + y) * Wo + xo];
        }
    }
    dx[idx] = acc;
}

// out[n, o, y, x] = sum_ij w[o, i, j] * x[n, o / M, y*sh+i*dh-pt, x*sw+j*dw-pl]
extern "C" __global__ void depthwise_forward(const T* x, const T* w, T* out, long long total,
        int C, int H, int W, int O, int kh, int kw, int sh, int sw, int pt, int pl, int dh,
        int dw, int Ho, int Wo) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int xo = idx % Wo, y = (idx / Wo) % Ho;
    long long no = idx / ((long long)Ho * Wo);
    int o = no % O, n = no / O;
    int c = o / (O / C);
    const T* plane = x + ((long long)n * C + c) * H * W;
    T acc = 0;
    for (int i = 0; i < kh; ++i) {
        int iy = y * sh + i * dh - pt;
        if (iy < 0 || iy >= H) continue;
        for (int j = 0; j < kw; ++j) {
            int ix = xo * sw + j * dw - pl;
            if (ix < 0 || ix >= W) continue;
            acc += w[((long long)o * kh + i) * kw + j] * plane[(long long)iy * W + ix];
        }
    }
    out[idx] = acc;
}

// dx[n, c, iy, ix] = sum over m, i, j of w[c*M+m, i, j] * g[n, c*M+m, y, x] for the (y, x)
// whose window reads (iy, ix): one thread per input pixel
extern "C" __global__ void depthwise_backward_input(const T* g, const T* w, T* dx,
        long long total, int C, int H, int W, int O, int kh, int kw, int sh, int sw, int pt,
        int pl, int dh, int dw, int Ho, int Wo) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int ix = idx % W, iy = (idx / W) % H;
    long long nc = idx / ((long long)H * W);
    int c = nc % C, n = nc / C;
    int mult = O / C;
    T acc = 0;
    for (int m = 0; m < mult; ++m) {
        int o = c * mult + m;
        const T* gplane = g + ((long long)n * O + o) * Ho * Wo;
        for (int i = 0; i < kh; ++i) {
            int ty = iy + pt - i * dh;
            if (ty < 0 || ty % sh) continue;
            int y = ty / sh;
            if (y >= Ho) continue;
            for (int j = 0; j < kw; ++j) {
                int tx = ix + pl - j * dw;
                if (tx < 0 || tx % sw) continue;
                int xo = tx / sw;
                if (xo >= Wo) continue;
                acc += w[((long long)o * kh + i) * kw + j] * gplane[(long long)y * Wo + xo];
            }
        }
    }
    dx[idx] = acc;
}

// gw[o, i, j] = sum_{n, y, x} g[n, o, y, x] * x[n, o / M, y*sh+i*dh-pt, x*sw+j*dw-pl]:
// one block (256 threads) per weight element, then a shared-memory tree reduction
extern "C" __global__ void depthwise_backward_weight(const T* g, const T* x, T* gw, int N,
        int C, int H, int W, int O, int kh, int kw, int sh, int sw, int pt, int pl, int dh,
        int dw, int Ho, int Wo) {
    __shared__ T partial[256];
    int e = blockIdx.x;
    int j = e % kw, i = (e / kw) % kh, o = e / (kh * kw);
    int c = o / (O / C);
    long long count = (long long)N * Ho * Wo;
    T acc = 0;
    for (long long t = threadIdx.x; t < count; t += blockDim.x) {
        int xo = t % Wo, y = (t / Wo) % Ho, n = t / ((long long)Ho * Wo);
        int iy = y * sh + i * dh - pt, ix = xo * sw + j * dw - pl;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W)
            acc += g[(((long long)n * O + o) * Ho + y) * Wo + xo]
                 * x[(((long long)n * C + c) * H + iy) * W + ix];
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) gw[e] = partial[0];
}
"""


def _conv(name: str, dtype):
    """The convolution kernel ``name`` compiled for ``dtype`` (float32 or float64)."""
    return _kernel(name, numpy.dtype(dtype).name, _CONV_SOURCE)


def _ints(*values):
    return tuple(numpy.int32(v) for v in values)


def _conv_geometry(kernel, stride, padding, dilation):
    """kh, kw, sh, sw, top, left, dh, dw as int32 kernel arguments."""
    (pt, _), (pl, _) = padding
    return _ints(kernel[0], kernel[1], stride[0], stride[1], pt, pl, dilation[0], dilation[1])


def im2col(x, kernel, stride, padding, dilation, out_size=None, out=None):
    """CUDA :func:`reference.im2col`: one thread per column-matrix element."""
    if not _float_gpu(x):
        return reference.im2col(x, kernel, stride, padding, dilation, out_size, out)
    x = cupy.ascontiguousarray(x)
    n, c, h, w = x.shape
    h_out, w_out = reference._conv_out_hw(x.shape, kernel, stride, padding, dilation, out_size)
    shape = (c * kernel[0] * kernel[1], n * h_out * w_out)
    cols = cupy.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    _launch(_conv("im2col", x.dtype), cols.size,
            (x, cols, numpy.int64(cols.size), *_ints(n, c, h, w),
             *_conv_geometry(kernel, stride, padding, dilation), *_ints(h_out, w_out)))
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_size=None):
    """CUDA :func:`reference.col2im`: one thread per input pixel gathers its entries."""
    if not _float_gpu(cols):
        return reference.col2im(cols, x_shape, kernel, stride, padding, dilation, out_size)
    cols = cupy.ascontiguousarray(cols)
    n, c, h, w = x_shape
    h_out, w_out = reference._conv_out_hw(x_shape, kernel, stride, padding, dilation, out_size)
    dx = cupy.empty(tuple(x_shape), dtype=cols.dtype)
    _launch(_conv("col2im", cols.dtype), dx.size,
            (cols, dx, numpy.int64(dx.size), *_ints(n, c, h, w),
             *_conv_geometry(kernel, stride, padding, dilation), *_ints(h_out, w_out)))
    return dx


def depthwise_conv2d(x, weight, stride, padding, dilation, out_size=None):
    """CUDA :func:`reference.depthwise_conv2d`: one thread per output element."""
    if not _float_gpu(x, weight):
        return reference.depthwise_conv2d(x, weight, stride, padding, dilation, out_size)
    x, weight = cupy.ascontiguousarray(x), cupy.ascontiguousarray(weight)
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    h_out, w_out = reference._conv_out_hw(x.shape, (kh, kw), stride, padding, dilation, out_size)
    out = cupy.empty((n, o, h_out, w_out), dtype=x.dtype)
    kh_, kw_, sh, sw, pt, pl, dh, dw = _conv_geometry((kh, kw), stride, padding, dilation)
    _launch(_conv("depthwise_forward", x.dtype), out.size,
            (x, weight, out, numpy.int64(out.size), *_ints(c, h, w, o), kh_, kw_, sh, sw, pt, pl,
             dh, dw, *_ints(h_out, w_out)))
    return out


def depthwise_conv2d_backward_input(grad, weight, x_shape, stride, padding, dilation):
    """CUDA :func:`reference.depthwise_conv2d_backward_input`: one thread per input pixel."""
    if not _float_gpu(grad, weight):
        return reference.depthwise_conv2d_backward_input(grad, weight, x_shape, stride,
                                                         padding, dilation)
    grad, weight = cupy.ascontiguousarray(grad), cupy.ascontiguousarray(weight)
    n, c, h, w = x_shape
    o, _, kh, kw = weight.shape
    dx = cupy.empty(tuple(x_shape), dtype=grad.dtype)
    kh_, kw_, sh, sw, pt, pl, dh, dw = _conv_geometry((kh, kw), stride, padding, dilation)
    _launch(_conv("depthwise_backward_input", grad.dtype), dx.size,
            (grad, weight, dx, numpy.int64(dx.size), *_ints(c, h, w, o), kh_, kw_, sh, sw, pt, pl,
             dh, dw, *_ints(grad.shape[2], grad.shape[3])))
    return dx


def depthwise_conv2d_backward_weight(grad, x, kernel, stride, padding, dilation):
    """CUDA :func:`reference.depthwise_conv2d_backward_weight`: one block per weight element."""
    if not _float_gpu(grad, x):
        return reference.depthwise_conv2d_backward_weight(grad, x, kernel, stride, padding,
                                                          dilation)
    grad, x = cupy.ascontiguousarray(grad), cupy.ascontiguousarray(x)
    n, c, h, w = x.shape
    o = grad.shape[1]
    gw = cupy.empty((o, 1, kernel[0], kernel[1]), dtype=grad.dtype)
    if gw.size:
        _conv("depthwise_backward_weight", grad.dtype)(
            (gw.size,), (_THREADS,),
            (grad, x, gw, *_ints(n, c, h, w, o), *_conv_geometry(kernel, stride, padding,
                                                                 dilation),
             *_ints(grad.shape[2], grad.shape[3])))
    return gw

# ---- non-maximum suppression
# As torchvision's CUDA nms: one thread per (box i, block of 64 boxes) writes a 64-bit mask
# of the boxes j > i of that block that box i suppresses (IoU > threshold); the greedy pass
# over the sorted boxes then reads the masks row by row, on the host.

_NMS_BLOCK = 64

_NMS_SRC = r"""
extern "C" __global__ void nms_mask(
    const T* b, unsigned long long* mask, long long n, long long n_blocks, T threshold) {
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n * n_blocks) return;
  long long i = t / n_blocks, block = t % n_blocks;
  T area_i = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
  unsigned long long bits = 0;
  for (int k = 0; k < 64; k++) {
    long long j = block * 64 + k;
    if (j >= n) break;
    if (j <= i) continue;
    T w = min(b[4 * i + 2], b[4 * j + 2]) - max(b[4 * i], b[4 * j]);
    T h = min(b[4 * i + 3], b[4 * j + 3]) - max(b[4 * i + 1], b[4 * j + 1]);
    w = w > 0 ? w : (T)0;
    h = h > 0 ? h : (T)0;
    T inter = w * h;
    T uni = area_i + (b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1]) - inter;
    if (uni != 0 && inter / uni > threshold) bits |= 1ULL << k;
  }
  mask[t] = bits;
}
"""


def nms(boxes, scores, iou_threshold: float):
    """CUDA :func:`reference.nms`: the suppression bitmask on the GPU, the greedy pass on host."""
    if not _float_gpu(boxes):
        return reference.nms(boxes, scores, iou_threshold)
    order = reference.nms_order(scores, cupy)
    b = cupy.ascontiguousarray(boxes[order])
    n = b.shape[0]
    n_blocks = (n + _NMS_BLOCK - 1) // _NMS_BLOCK
    mask = cupy.zeros(n * n_blocks, dtype=cupy.uint64)
    kernel = _kernel("nms_mask", b.dtype.name, _NMS_SRC)
    _launch(kernel, n * n_blocks, (b, mask, numpy.int64(n), numpy.int64(n_blocks),
                                   b.dtype.type(iou_threshold)))
    rows = cupy.asnumpy(mask).reshape(n, n_blocks)
    removed = numpy.zeros(n_blocks, dtype=numpy.uint64)  # bit k of word w: box 64 w + k
    keep = []
    for i in range(n):
        if (int(removed[i // _NMS_BLOCK]) >> (i % _NMS_BLOCK)) & 1:
            continue
        keep.append(i)
        removed |= rows[i]
    return order[cupy.asarray(numpy.asarray(keep, dtype=numpy.int64))]

# ---- RoI pooling
# As the Numba kernels: the weights and bins come from the reference (run by CuPy), and the
# kernels run one thread per output cell (k, c, p, q). RoIAlign's backward scatters each
# output's gradient over the cells it read by atomic adds (RoIs overlap); RoIPool's backward
# is the reference's scatter-add (``bincount``), which CuPy runs on the GPU.

_ROI_SRC = r"""
__device__ inline void roi_cell(long long t, int c, int oh, int ow, long long* k, int* ch,
                                int* p, int* q) {
  // the (RoI, channel, row, column) of output cell t of a (K, C, oh, ow) array
  *q = t % ow;
  *p = (t / ow) % oh;
  *ch = (t / ((long long)ow * oh)) % c;
  *k = t / ((long long)ow * oh * c);
}

extern "C" __global__ void roi_align_fwd(
    const T* x, const long long* batch, const T* wy, const long long* y0, const long long* y1,
    const T* wx, const long long* x0, const long long* x1, const T* count, T* out,
    long long total, int c, int h, int w, int oh, int ow) {
  // out[k, ch, p, q] = sum over r, s of wy[k, p, r] wx[k, q, s] x[batch[k], ch, r, s] / count[k]
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  long long k; int ch, p, q;
  roi_cell(t, c, oh, ow, &k, &ch, &p, &q);
  const T* plane = x + (batch[k] * c + ch) * h * w;
  const T* wyr = wy + (k * oh + p) * h;
  const T* wxr = wx + (k * ow + q) * w;
  long long r0 = y0[k * oh + p], r1 = y1[k * oh + p], s0 = x0[k * ow + q], s1 = x1[k * ow + q];
  T acc = 0;
  for (long long r = r0; r < r1; r++) {
    T row = 0;
    for (long long s = s0; s < s1; s++) row += wxr[s] * plane[r * w + s];
    acc += wyr[r] * row;
  }
  out[t] = acc / count[k];
}

extern "C" __global__ void roi_align_bwd(
    const T* g, const long long* batch, const T* wy, const long long* y0, const long long* y1,
    const T* wx, const long long* x0, const long long* x1, const T* count, T* dx,
    long long total, int c, int h, int w, int oh, int ow) {
  // dx[batch[k], ch, r, s] += g[k, ch, p, q] wy[k, p, r] wx[k, q, s] / count[k], atomically
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  long long k; int ch, p, q;
  roi_cell(t, c, oh, ow, &k, &ch, &p, &q);
  T* plane = dx + (batch[k] * c + ch) * h * w;
  const T* wyr = wy + (k * oh + p) * h;
  const T* wxr = wx + (k * ow + q) * w;
  long long r0 = y0[k * oh + p], r1 = y1[k * oh + p], s0 = x0[k * ow + q], s1 = x1[k * ow + q];
  T gv = g[t] / count[k];
  for (long long r = r0; r < r1; r++) {
    T gr = gv * wyr[r];
    for (long long s = s0; s < s1; s++) atomicAdd(&plane[r * w + s], gr * wxr[s]);
  }
}

extern "C" __global__ void roi_pool_fwd(
    const T* x, const long long* batch, const long long* h_lo, const long long* h_hi,
    const long long* w_lo, const long long* w_hi, T* out, long long* argmax, long long total,
    int c, int h, int w, int oh, int ow, T flt_max) {
  // out[k, ch, p, q] = the first maximum of bin (p, q) of RoI k, argmax its r * W + s;
  // an empty bin gives 0 and -1
  long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= total) return;
  long long k; int ch, p, q;
  roi_cell(t, c, oh, ow, &k, &ch, &p, &q);
  const T* plane = x + (batch[k] * c + ch) * h * w;
  long long r0 = h_lo[k * oh + p], r1 = h_hi[k * oh + p];
  long long s0 = w_lo[k * ow + q], s1 = w_hi[k * ow + q];
  T best = (r1 <= r0 || s1 <= s0) ? (T)0 : -flt_max;
  long long best_i = -1;
  for (long long r = r0; r < r1; r++) {
    for (long long s = s0; s < s1; s++) {
      if (plane[r * w + s] > best) { best = plane[r * w + s]; best_i = r * w + s; }
    }
  }
  out[t] = best;
  argmax[t] = best_i;
}
"""


def _roi_ints(shape):
    """``c, h, w, oh, ow`` for the RoI kernels from ``(N, C, H, W)`` and ``(oh, ow)``."""
    return [numpy.int32(v) for v in shape]


def _roi_align_launch(name, source_array, rois, output_size, x_shape, spatial_scale,
                      sampling_ratio, aligned, result):
    """Run ``roi_align_fwd`` or ``roi_align_bwd``: one thread per output cell."""
    wy, wx, count = reference.roi_align_weights(rois, output_size, x_shape, spatial_scale,
                                                sampling_ratio, aligned)
    y0, y1 = reference.roi_align_support(wy)
    x0, x1 = reference.roi_align_support(wx)
    total = rois.shape[0] * x_shape[1] * output_size[0] * output_size[1]
    _launch(_kernel(name, source_array.dtype.name, _ROI_SRC), total,
            (cupy.ascontiguousarray(source_array), rois[:, 0].astype(cupy.int64), wy, y0, y1,
             wx, x0, x1, count, result, numpy.int64(total),
             *_roi_ints((*x_shape[1:], *output_size))))
    return result


def roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """CUDA :func:`reference.roi_align`."""
    if not _float_gpu(x, rois):
        return reference.roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    out = cupy.empty((rois.shape[0], x.shape[1]) + tuple(output_size), dtype=x.dtype)
    return _roi_align_launch("roi_align_fwd", x, rois, tuple(output_size), x.shape,
                             spatial_scale, sampling_ratio, aligned, out)


def roi_align_backward(grad, rois, x_shape, spatial_scale, sampling_ratio, aligned):
    """CUDA :func:`reference.roi_align_backward`: a scatter by atomic adds."""
    if not _float_gpu(grad, rois):
        return reference.roi_align_backward(grad, rois, x_shape, spatial_scale, sampling_ratio,
                                            aligned)
    dx = cupy.zeros(x_shape, dtype=grad.dtype)
    return _roi_align_launch("roi_align_bwd", grad, rois, tuple(grad.shape[2:]), x_shape,
                             spatial_scale, sampling_ratio, aligned, dx)


def roi_pool(x, rois, output_size, spatial_scale):
    """CUDA :func:`reference.roi_pool`."""
    if not _float_gpu(x, rois):
        return reference.roi_pool(x, rois, output_size, spatial_scale)
    shape = (rois.shape[0], x.shape[1]) + tuple(output_size)
    out = cupy.empty(shape, dtype=x.dtype)
    argmax = cupy.empty(shape, dtype=cupy.int64)
    h_lo, h_hi = reference.roi_pool_bins(rois, output_size[0], x.shape[2], spatial_scale, axis=1)
    w_lo, w_hi = reference.roi_pool_bins(rois, output_size[1], x.shape[3], spatial_scale, axis=0)
    _launch(_kernel("roi_pool_fwd", x.dtype.name, _ROI_SRC), out.size,
            (cupy.ascontiguousarray(x), rois[:, 0].astype(cupy.int64), h_lo, h_hi, w_lo, w_hi,
             out, argmax, numpy.int64(out.size), *_roi_ints((*x.shape[1:], *output_size)),
             x.dtype.type(reference.FLT_MAX)))
    return out, argmax


KERNELS = {
    "roi_align": roi_align,
    "roi_align_backward": roi_align_backward,
    "roi_pool": roi_pool,
    "nms": nms,
    "max_pool2d": max_pool2d,
    "max_pool2d_backward": max_pool2d_backward,
    "avg_pool2d": avg_pool2d,
    "avg_pool2d_backward": avg_pool2d_backward,
    "batch_norm_stats": batch_norm_stats,
    "batch_norm_backward_reduce": batch_norm_backward_reduce,
    "local_response_norm": local_response_norm,
    "local_response_norm_backward": local_response_norm_backward,
    "index_add": index_add,
    "im2col": im2col,
    "col2im": col2im,
    "depthwise_conv2d": depthwise_conv2d,
    "depthwise_conv2d_backward_input": depthwise_conv2d_backward_input,
    "depthwise_conv2d_backward_weight": depthwise_conv2d_backward_weight,
    "erf": erf,
}
