"""Convolution: ``conv2d`` and ``conv_transpose2d``, by im2col and one matrix product.

A 2-d convolution of ``x: (N, C, H, W)`` with ``weight: (O, C/G, kh, kw)`` is

    y[n, o, y, x] = sum_{c, i, j} weight[o, c, i, j] * x_padded[n, c, y*sh + i*dh, x*sw + j*dw]

im2col copies every input value that a kernel window reads into one column matrix
``cols: (C*kh*kw, N*H_out*W_out)``, so the whole convolution becomes one GEMM::

    y = weight.reshape(O, C*kh*kw) @ cols              # (O, N*H_out*W_out)

and backward is two more: ``dW = dy @ cols^T`` and ``dcols = W^T @ dy``, after which
col2im (the adjoint of im2col) adds every column entry back where it was read from.
On the CPU all three go in chunks of a few images (``CHUNK_BYTES``), so that a chunk's
columns are still in the cache when the GEMM reads them, and backward rebuilds the
columns from ``x`` instead of keeping them from forward (they are 9x the input;
Winograd, which runs only on big layers, keeps its 4x instead).
With ``groups=G`` the channels split into G independent convolutions: the same three
GEMMs, batched over a leading G axis, with no Python loop over the groups.

Six special cases run faster than the general path (benchmarks/README.md, "Performance
notes", has the measurements). Which one computes a call is chosen once, by forward
(``_choose_algorithm``), and kept on the graph node for backward:

* 3x3, stride-1 convolutions with many channels (more than 128, or on planes smaller
  than 8x8: the deeper layers of a ResNet-18 or a VGG at 224x224) use Winograd's
  F(2x2, 3x3) algorithm on the CPU: 2.25x fewer multiplies (winograd.py).
* 1x1 kernels without padding skip im2col: the column matrix is the (subsampled)
  input itself, with its channels first.
* depthwise convolutions (``groups == C_in``, one input channel per group) use direct
  kernels: through im2col they become thousands of tiny matrix products.
* grouped convolutions with few channels per group (ResNeXt's 4) use direct grouped
  kernels where the backend has compiled ones (numba), for the same reason.
* stride-1 convolutions on planes of 8x8 and more (a CIFAR ResNet's every stride-1
  layer; where Winograd pays, up to 128 input channels) use the same direct kernels with
  one group where the backend compiled them (numba's are register-blocked for it): there
  the column matrix, or Winograd's transformed tiles, cost as much as the products they
  feed.
* the GEMMs stay in NumPy (OpenBLAS on the CPU) or CuPy (cuBLAS on the GPU).

A transposed convolution is the input-gradient of a convolution, and its gradients are
a convolution and a weight gradient: the two functions below (``_conv_forward`` and
``_conv_backward``) serve both ops.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from minicnn.autograd.function import Function
from minicnn.autograd.grad_mode import is_grad_enabled
from minicnn.autograd.tensor import Tensor
from minicnn.backend import array_module, backend_of, current_backend, get_backend
from minicnn.backend.geometry import conv_output_size
from minicnn.nn.functional import winograd
from minicnn.nn.functional.workspace import WORKSPACE

__all__ = ["conv2d", "conv_transpose2d", "ConvGeometry", "set_conv_algorithm"]

Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about a convolution except its data, in the form the kernels take.

    ``padding`` is ((top, bottom), (left, right)): 'same' padding can be asymmetric.
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: Pads
    dilation: tuple[int, int]
    groups: int

    def args(self) -> tuple:
        """(kernel, stride, padding, dilation): the geometry arguments of every kernel."""
        return self.kernel, self.stride, self.padding, self.dilation

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output size of the convolution of an ``h x w`` input."""
        (pt, pb), (pl, pr) = self.padding
        return (conv_output_size(h, self.kernel[0], self.stride[0], pt, pb, self.dilation[0]),
                conv_output_size(w, self.kernel[1], self.stride[1], pl, pr, self.dilation[1]))


# ---------------------------------------------------------------- argument checks


def int_pair(value, name: str, op: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints -> a pair of ints, each at least ``minimum``; ``op`` (the
    function or layer) and ``name`` (the argument) name a bad value in the error."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {what}, got {value!r}")
    return pair


def _padding(padding, kernel, stride, dilation, op: str) -> Pads:
    """int, pair, 'valid' or 'same' -> ((top, bottom), (left, right)).

    'same' pads ``dilation*(kernel-1)`` in total per axis, the odd one at the bottom/right,
    as PyTorch does; it is only defined for stride 1.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"{op}: padding='same' is not supported for strided convolutions "
                    f"(got stride={stride}); use an int or tuple padding"
                )
            total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
            return ((total[0] // 2, total[0] - total[0] // 2),
                    (total[1] // 2, total[1] - total[1] // 2))
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a pair of ints, "
                         f"got {padding!r}")
    ph, pw = int_pair(padding, "padding", op, minimum=0)
    return (ph, ph), (pw, pw)


def _check_tensors(op: str, input, weight, bias, weight_layout: str) -> None:
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            hint = ("; wrap arrays with minicnn.tensor(...), or load batches with "
                    "minicnn.utils.data.DataLoader, which yields Tensors")
            raise TypeError(f"{op}: {name} must be a minicnn Tensor, got {type(t).__name__}"
                            + (hint if hasattr(t, "shape") else ""))
    if input.ndim != 4:
        raise ValueError(f"{op}: expected 4-d input (N, C, H, W), got input of shape {input.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected 4-d weight {weight_layout}, got weight of shape "
                         f"{weight.shape}")
    if input.dtype.kind != "f" or input.dtype != weight.dtype:
        raise TypeError(f"{op}: input and weight must have the same floating dtype, got "
                        f"input {input.dtype} and weight {weight.dtype}")
    if input.device != weight.device:
        raise ValueError(f"{op}: input is on {input.device} but weight is on {weight.device}; "
                         "move both to the same device")
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"{op}: bias must be a minicnn Tensor or None, got "
                            f"{type(bias).__name__}")
        if bias.dtype != input.dtype or bias.device != input.device:
            raise TypeError(f"{op}: bias must have the input's dtype and device "
                            f"({input.dtype}, {input.device}), got ({bias.dtype}, {bias.device})")


def _check_groups(groups, op: str) -> int:
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return int(groups)


def _check_fits(op: str, input_hw, geometry: ConvGeometry) -> None:
    """The dilated kernel must fit in the padded input (else there is no output)."""
    (pt, pb), (pl, pr) = geometry.padding
    padded = (input_hw[0] + pt + pb, input_hw[1] + pl + pr)
    reach = tuple(d * (k - 1) + 1 for d, k in zip(geometry.dilation, geometry.kernel, strict=True))
    if reach[0] > padded[0] or reach[1] > padded[1]:
        raise ValueError(
            f"{op}: kernel size {geometry.kernel} (dilated: {reach}) is larger than the padded "
            f"input size {padded} (input {tuple(input_hw)} plus padding)"
        )


# ---------------------------------------------------------------- the three products


def _is_depthwise(x_channels: int, weight_shape, groups: int) -> bool:
    """One input channel per group and more than one group: the direct kernels apply."""
    return groups > 1 and groups == x_channels and weight_shape[1] == 1


# Grouped convolutions with at most this many input channels per group run by direct
# kernels (no column matrix) where the backend has compiled ones. Measured on a 3x3 layer,
# 128 channels at 16x16, batch 32, forward+backward: ResNeXt's 4 per group 3.1 ms against
# im2col's 16.9 (PyTorch 5.3); 16 per group 8.5 against 16.4; 64 per group im2col wins.
GROUPED_DIRECT_MAX_CHANNELS = 16


def _is_narrow_grouped(backend, x_channels: int, weight_shape, groups: int) -> bool:
    """Few input channels per group (not depthwise): the direct grouped kernels apply."""
    return (groups > 1 and not _is_depthwise(x_channels, weight_shape, groups)
            and weight_shape[1] <= GROUPED_DIRECT_MAX_CHANNELS
            and backend.has_own("grouped_conv2d"))


# Dense (one group) stride-1 convolutions run by the direct kernels on planes of 8x8 and
# more: against im2col they won on every such plane measured, against Winograd up to 128
# input channels. Measured forward+backward on 2 cores with Numba's workers pinned one per
# core (benchmarks/README.md, "Performance notes" 12 and 14; runs differ by 10-30% per
# row), time relative to im2col (Winograd in brackets, where it pays), 3x3 kernels:
#   batch 32, 32x32: 3 channels 0.71; 16 0.52; 32 0.41 (1.02); 64 0.50 (0.84);
#                    128 0.61 (0.72)
#   batch 32, 16x16: 3 channels 0.70; 16 0.69; 32 0.49; 48 0.51; 64 0.53 (0.96);
#                    128 0.58 (0.77); 256 0.63 (0.65)
#   batch 32, 8x8:   3 channels 0.61; 16 0.56; 32 0.73; 64 0.49-1.30 (four runs: its time
#                    swings between processes); 128 0.76 (0.94); 256 0.82 (0.77)
#   batch 32, 4x4:   256 channels 0.85 (1.03); 512 0.93 (0.80)
#   batch 8, 28x28:  16 channels 0.66; 32 0.56; 128 0.69 (0.74); 256 0.73 (0.64)
#   batch 8, 56x56 and 112x112, 64 channels: 0.65 (0.85) and 0.46 (0.70); batch 4 and 2,
#                    56x56: 128 0.70 (0.64), 256 0.77 (0.56); batch 4, 28x28: 512 0.75
#                    (0.59); batch 8, 14x14: 256 0.64 (0.65); 7x7: 512 1.05 (0.83)
# Whole training steps, this rule against the earlier one (direct only from 16x16, and
# with 8-16 pixels per input channel), alternated step by step in one process: ResNet-20
# 0.92 and 0.98, ResNet-56 0.97 and 0.89, ResNet-18 at 32x32 0.95, the main job's small
# ResNet 0.94 (median ratios). On Numba's OpenMP layer, minicnn's default since (item
# 15), the direct kernels ran at 1.7-1.8 cores' worth of CPU inside steps, against 1.4-1.6
# pinned; on an unpinned workqueue (item 14: NumPy imported before minicnn) they ran on
# about one core and the earlier rule was better.
# So: direct from DIRECT_MIN_PIXELS output pixels, where Winograd does not pay, or pays
# with at most DIRECT_MAX_CHANNELS input channels.
DIRECT_MIN_PIXELS = 64  # 8x8
DIRECT_MAX_CHANNELS = 128


def _use_direct(backend, x_shape, geometry: ConvGeometry, winograd_pays: bool) -> bool:
    """The direct kernels for this stride-1, one-group convolution (see ``DIRECT_MIN_PIXELS``),
    where the backend compiled them (numba)? ``winograd_pays``: Winograd is the other choice."""
    if (geometry.groups != 1 or geometry.stride != (1, 1) or _is_pointwise(geometry)
            or not backend.has_own("grouped_conv2d")):
        return False
    h_out, w_out = geometry.output_hw(*x_shape[2:])
    if h_out * w_out < DIRECT_MIN_PIXELS:
        return False
    return not winograd_pays or x_shape[1] <= DIRECT_MAX_CHANNELS


def _is_pointwise(geometry: ConvGeometry) -> bool:
    """A 1x1 kernel without padding: its column matrix is the input itself, no im2col."""
    return geometry.kernel == (1, 1) and geometry.padding == ((0, 0), (0, 0))


def _subsample(x, geometry: ConvGeometry, out_hw):
    """The input pixels a 1x1 kernel reads: every stride-th one, cropped to the output."""
    (sh, sw), (ho, wo) = geometry.stride, out_hw
    return x[:, :, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]


def _channels_first(a):
    """``(N, C, H, W) -> (C, N*H*W)``, contiguous: the layout of the column matrix rows."""
    xp = array_module(a)
    return xp.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(a.shape[1], -1)


def _columns(x, geometry: ConvGeometry, out_hw):
    """The column matrix ``(C*kh*kw, N*H_out*W_out)`` of ``x``, in a workspace buffer.

    For a 1x1 kernel without padding it is just the (subsampled) input with channels
    first: a plain copy, no im2col.
    """
    backend = backend_of(x)
    if _is_pointwise(geometry):
        return _channels_first(_subsample(x, geometry, out_hw))
    n, c = x.shape[:2]
    shape = (c * geometry.kernel[0] * geometry.kernel[1], n * out_hw[0] * out_hw[1])
    cols = WORKSPACE.empty(shape, x.dtype, backend.xp)
    return backend.im2col(x, *geometry.args(), out_size=out_hw, out=cols)


# im2col's work goes in chunks of images whose column matrix takes about CHUNK_BYTES: the
# chunk is built, multiplied and dropped while it is still in the CPU's cache, and no
# column matrix outlives its call (backward rebuilds it from x: a CIFAR ResNet's training
# step kept 9 values per input pixel of every layer, 3.8x PyTorch's working memory).
# Measured on a 16-channel 32x32 layer at batch 32 (one core): im2col + weight-gradient
# GEMM 5.6 ms in one piece, 3.4 ms in chunks of 8 images (4.7 MB), 11.5 ms image by image
# (the GEMMs get too narrow); on 32 and 64 channels at 16x16 and 8x8 chunks and one piece
# were equal. On the GPU (CuPy) the whole batch is one chunk: there is no cache to fit.
CHUNK_BYTES = 6 << 20


def _image_chunks(x_shape, geometry: ConvGeometry, out_hw, itemsize: int, xp) -> list:
    """``[(n0, n1), ...]``: image ranges whose column matrices take about CHUNK_BYTES."""
    n, c = x_shape[:2]
    if xp is not np:
        return [(0, n)]
    per_image = c * geometry.kernel[0] * geometry.kernel[1] * out_hw[0] * out_hw[1] * itemsize
    step = max(1, CHUNK_BYTES // per_image)
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def _conv_forward(x, weight, geometry: ConvGeometry, algorithm: str, out_hw=None):
    """Convolve ``x: (N, C, H, W)`` with ``weight: (O, C/G, kh, kw)`` by ``algorithm``
    (:func:`_choose_algorithm`; not Winograd, which has its own three products).

    Returns ``y: (N, O, H_out, W_out)``, C-contiguous. im2col goes chunk by chunk
    (:data:`CHUNK_BYTES`): ``y[n0:n1] = W @ cols(x[n0:n1])``, one batched GEMM over groups.
    """
    backend = backend_of(x)
    xp = backend.xp
    o, g = weight.shape[0], geometry.groups
    out_hw = tuple(out_hw) if out_hw is not None else geometry.output_hw(*x.shape[2:])
    if algorithm == DEPTHWISE:
        return backend.depthwise_conv2d(x, weight, *geometry.args()[1:], out_size=out_hw)
    if algorithm in (GROUPED, DIRECT):
        return backend.grouped_conv2d(x, weight, *geometry.args()[1:], out_size=out_hw)
    w3 = weight.reshape(g, o // g, -1)
    y = xp.empty((x.shape[0], o, *out_hw), dtype=x.dtype)
    for n0, n1 in _image_chunks(x.shape, geometry, out_hw, x.dtype.itemsize, xp):
        cols = _columns(x[n0:n1], geometry, out_hw)  # (C*kh*kw, n*L)
        m = xp.matmul(w3, cols.reshape(g, -1, cols.shape[1]))  # (G, O/G, n*L)
        y[n0:n1] = m.reshape(o, n1 - n0, *out_hw).transpose(1, 0, 2, 3)
    return y


def _conv_backward(grad, x, weight, geometry: ConvGeometry, x_shape, algorithm: str,
                   need_x: bool = True, need_w: bool = True):
    """Gradients of :func:`_conv_forward`: ``grad: (N, O, Ho, Wo) -> (dx, dW)``, each None
    when not needed; ``dx`` needs ``weight``, ``dW`` needs ``x`` (its column matrix is
    rebuilt here chunk by chunk, next to the chunk of ``grad`` that multiplies it)::

        dcols = W^T @ dy     then dx = col2im(dcols)      (im2col's adjoint)
        dW    = dy @ cols^T  (O/G, C/G*kh*kw) per group: the weight's own layout

    ``cols @ dy^T`` (dW transposed) was 5-15% faster on 16-64 channel layers, but its result
    had to be transposed into the weight's layout, and copying that transposed gradient
    (into ``.grad``, into the optimizer's buffers) cost more than the product saved:
    ResNet-18's step at 32x32 spent 32 ms of 160 copying its 44 MB of such gradients.
    """
    backend = backend_of(grad)
    xp = backend.xp
    n, c = x_shape[:2]
    o, g = weight.shape[0], geometry.groups
    out_hw = tuple(grad.shape[2:])
    args = geometry.args()
    if algorithm in (DEPTHWISE, GROUPED, DIRECT):
        grouped = algorithm != DEPTHWISE
        kernel = backend.grouped_conv2d_backward_input if grouped else \
            backend.depthwise_conv2d_backward_input
        dx = kernel(grad, weight, x_shape, *args[1:]) if need_x else None
        if not need_w:
            return dx, None
        if grouped:
            return dx, backend.grouped_conv2d_backward_weight(grad, x, *args, g)
        return dx, backend.depthwise_conv2d_backward_weight(grad, x, *args)
    dx = xp.empty(x_shape, dtype=grad.dtype) if need_x else None
    if need_x and _is_pointwise(geometry) and geometry.stride != (1, 1):
        dx[...] = 0  # the pixels a strided 1x1 kernel skips get no gradient
    dw = xp.zeros((g, o // g, weight[0].size), dtype=grad.dtype) if need_w else None
    w3t = weight.reshape(g, o // g, -1).transpose(0, 2, 1)  # (G, C/G*kh*kw, O/G)
    for n0, n1 in _image_chunks(x_shape, geometry, out_hw, grad.dtype.itemsize, xp):
        dy = _channels_first(grad[n0:n1]).reshape(g, o // g, -1)  # (G, O/G, n*L)
        if need_x:
            dcols = WORKSPACE.empty((g, w3t.shape[1], dy.shape[2]), grad.dtype, xp)
            xp.matmul(w3t, dy, out=dcols)  # (G, C/G*kh*kw, n*L)
            dcols = dcols.reshape(-1, dy.shape[2])
            if _is_pointwise(geometry):  # the adjoint of "channels first, subsampled"
                dxs = dcols.reshape(c, n1 - n0, *out_hw).transpose(1, 0, 2, 3)
                _subsample(dx[n0:n1], geometry, out_hw)[...] = dxs
            else:
                dx[n0:n1] = backend.col2im(dcols, (n1 - n0, *x_shape[1:]), *args,
                                           out_size=out_hw)
            del dcols
        if need_w:
            cols = _columns(x[n0:n1], geometry, out_hw)
            dw += xp.matmul(dy, cols.reshape(g, -1, cols.shape[1]).transpose(0, 2, 1))
            del cols
    dw = dw.reshape(weight.shape) if need_w else None  # (G, O/G, C/G*kh*kw): a view
    return dx, dw


def _add_bias_nchw(y, bias):
    """``y`` (a fresh array, any strides) as a contiguous NCHW array, plus ``bias`` per channel."""
    xp = array_module(y)
    if y.flags.c_contiguous:  # already NCHW: add in place, no copy
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y
    out = xp.empty(y.shape, dtype=y.dtype)
    if bias is None:
        out[...] = y
    else:
        xp.add(y, bias.reshape(1, -1, 1, 1), out=out)
    return out


def _recording(ctx) -> bool:
    return is_grad_enabled() and any(ctx.needs_input_grad)


# ---------------------------------------------------------------- conv2d


_ALGORITHMS = ("auto", "im2col", "winograd", "direct")
_conv_algorithm = "auto"

# The ways one convolution can be computed (see :func:`_choose_algorithm`):
IM2COL = "im2col"  # column matrix and GEMMs (a 1x1 kernel's columns are the input itself)
WINOGRAD = "winograd"  # F(2x2, 3x3), winograd.py
DEPTHWISE = "depthwise"  # direct kernels, one input channel per group
GROUPED = "grouped"  # direct grouped kernels, few input channels per group
DIRECT = "direct"  # the same kernels with one group: small stride-1 layers, big planes


def set_conv_algorithm(name: str) -> str:
    """Choose how ``conv2d`` computes ungrouped convolutions; returns the previous choice.

    * ``"auto"`` (the default): Winograd F(2x2, 3x3) (see winograd.py) for 3x3, stride-1,
      dilation-1, ungrouped convolutions large enough for it to pay (``winograd.pays``:
      ResNet and VGG layers from 32 channels at 32x32 on) on a backend with compiled
      transforms (numba); but first, the direct kernels for stride-1 ones on planes of 8x8
      and more (``DIRECT_MIN_PIXELS``; where Winograd pays, up to 128 input channels) on a
      backend with compiled ones (numba); im2col for everything else.
    * ``"im2col"``: always im2col (the algorithm the lessons start from).
    * ``"winograd"``: Winograd wherever it applies, whatever the channel count or device.
    * ``"direct"``: the direct kernels for every ungrouped convolution (the ``grouped_conv2d``
      kernels with one group; on the numpy and cupy backends their reference versions).

    The choice changes speed and rounding, never the result beyond rounding.
    """
    global _conv_algorithm
    if name not in _ALGORITHMS:
        raise ValueError(f"set_conv_algorithm: name must be one of {_ALGORITHMS}, got {name!r}")
    previous, _conv_algorithm = _conv_algorithm, name
    return previous


def _use_winograd(backend, x_shape, weight_shape, geometry: ConvGeometry) -> bool:
    """Winograd for this convolution, under the ``set_conv_algorithm`` setting?"""
    if _conv_algorithm == "im2col" or not winograd.applies(
            geometry.kernel, geometry.stride, geometry.dilation, geometry.groups):
        return False
    if _conv_algorithm == "winograd":
        return True
    # only with compiled transforms (numba): the reference ones make it slower than im2col
    return (backend.has_own("winograd_input_transform")
            and winograd.pays(x_shape[1], weight_shape[0], geometry.output_hw(*x_shape[2:])))


def _choose_algorithm(backend, x_shape, weight_shape, geometry: ConvGeometry,
                      allow_winograd: bool = True) -> str:
    """How to compute the convolution of an ``x_shape`` input with a ``weight_shape`` weight
    on ``backend``: ``WINOGRAD``, ``DEPTHWISE``, ``GROUPED`` or ``DIRECT`` (direct kernels)
    or ``IM2COL``.

    Chosen once per call, by forward; backward reads the choice from ``ctx``, so its two
    products use the algorithm (and the saved arrays) that forward used.
    """
    c, g = x_shape[1], geometry.groups
    if _is_depthwise(c, weight_shape, g):
        return DEPTHWISE
    if _is_narrow_grouped(backend, c, weight_shape, g):
        return GROUPED
    if _conv_algorithm == "direct" and g == 1:
        return DIRECT
    winograd_pays = allow_winograd and _use_winograd(backend, x_shape, weight_shape, geometry)
    if _conv_algorithm == "auto" and _use_direct(backend, x_shape, geometry, winograd_pays):
        return DIRECT
    return WINOGRAD if winograd_pays else IM2COL


class Convolution2d(Function):
    """``conv2d`` as a graph node: by Winograd (winograd.py) where that applies and pays,
    else forward by :func:`_conv_forward` and backward by the other two."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, geometry: ConvGeometry):
        algorithm = _choose_algorithm(backend_of(x), x.shape, weight.shape, geometry)
        recording = _recording(ctx)
        need_x, need_w, _ = ctx.needs_input_grad
        if recording:
            ctx.geometry, ctx.x_shape, ctx.algorithm = geometry, x.shape, algorithm
        if algorithm == WINOGRAD:
            # Winograd keeps its transformed input V for dW (4 values per input pixel; it
            # runs only on layers big enough to pay): rebuilding it in backward made a
            # ResNet-18 step at 224x224 8% slower
            y, u, vs = winograd.forward(x, weight, geometry.padding,
                                        geometry.output_hw(*x.shape[2:]),
                                        keep_v=recording and need_w)
            if recording:
                ctx.save_for_backward(u if need_x else None, vs)
            return _add_bias_nchw(y, bias)
        y = _conv_forward(x, weight, geometry, algorithm)
        if recording:  # x, not its column matrix: backward rebuilds that chunk by chunk
            ctx.save_for_backward(x if need_w else None, weight)
        return _add_bias_nchw(y, bias)

    @staticmethod
    def backward(ctx, grad):
        need_x, need_w, need_b = ctx.needs_input_grad
        geometry, algorithm = ctx.geometry, ctx.algorithm
        db = grad.sum(axis=(0, 2, 3)) if need_b else None
        if algorithm == WINOGRAD:
            u, vs = ctx.saved_tensors  # the transformed filters and input chunks
            dx, dw = winograd.backward(grad, u, vs, ctx.x_shape, geometry.padding,
                                       need_x, need_w)
            return dx, dw, db
        x, weight = ctx.saved_tensors
        dx, dw = _conv_backward(grad, x, weight, geometry, ctx.x_shape, algorithm, need_x, need_w)
        return dx, dw, db


class EmptyBatch(Function):
    """The output of a layer on an empty batch (``N = 0``): an empty array of the output's
    shape; the gradients of the inputs are zeros (PyTorch gives the same)."""

    @staticmethod
    def forward(ctx, *arrays, out_shape):
        ctx.specs = [None if a is None else (a.shape, a.dtype) for a in arrays]
        return array_module(arrays[0]).zeros(out_shape, arrays[0].dtype)

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad)
        return tuple(None if a is None else xp.zeros(*a) for a in ctx.specs)


def _check_kernel(op: str, weight: Tensor) -> tuple[int, int]:
    kernel = (weight.shape[2], weight.shape[3])
    if min(kernel) < 1:
        raise ValueError(f"{op}: kernel size must be positive, got weight of shape "
                         f"{weight.shape} (kernel {kernel})")
    return kernel


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation, as in every deep-learning framework).

    ``input: (N, C_in, H, W)``, ``weight: (C_out, C_in/groups, kh, kw)``, ``bias: (C_out,)``
    ``-> (N, C_out, H_out, W_out)`` with ``H_out = floor((H + 2*pad - dil*(kh-1) - 1)/stride) + 1``.

    ``stride``, ``dilation``: int or (h, w). ``padding``: int, (h, w), 'valid' (no padding)
    or 'same' (output size = input size; stride 1 only; an odd total puts the extra row
    and column at the bottom and right, as PyTorch does). ``groups`` splits the channels
    into independent convolutions; ``groups == C_in`` is a depthwise convolution.
    """
    op = "conv2d"
    _check_tensors(op, input, weight, bias, "(C_out, C_in/groups, kH, kW)")
    groups = _check_groups(groups, op)
    kernel = _check_kernel(op, weight)
    stride = int_pair(stride, "stride", op, minimum=1)
    dilation = int_pair(dilation, "dilation", op, minimum=1)
    pads = _padding(padding, kernel, stride, dilation, op)
    c_out = weight.shape[0]
    if c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide out_channels={c_out} "
                         f"(weight shape {weight.shape})")
    if input.shape[1] != weight.shape[1] * groups:
        raise ValueError(
            f"{op}: expected input with C_in={weight.shape[1] * groups} channels (weight shape "
            f"{weight.shape} with groups={groups}), got input of shape {input.shape}"
        )
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},) (C_out), got {bias.shape}")
    geometry = ConvGeometry(kernel, stride, pads, dilation, groups)
    _check_fits(op, input.shape[2:], geometry)
    if input.shape[0] == 0:
        out_shape = (0, c_out, *geometry.output_hw(*input.shape[2:]))
        return EmptyBatch.apply(input, weight, bias, out_shape=out_shape)
    return Convolution2d.apply(input, weight, bias, geometry=geometry)


# ---------------------------------------------------------------- conv_transpose2d


class TransposedConvolution2d(Function):
    """``conv_transpose2d``: forward is a convolution's input-gradient, backward a convolution
    (for the input) and a convolution's weight-gradient with the roles of x and dy swapped."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, geometry: ConvGeometry, out_shape):
        # the algorithm of the convolution whose input-gradient this is (input out_shape);
        # never Winograd: conv_transpose2d sends those to conv2d
        algorithm = _choose_algorithm(backend_of(x), out_shape, weight.shape, geometry,
                                      allow_winograd=False)
        y, _ = _conv_backward(x, None, weight, geometry, out_shape, algorithm, need_w=False)
        if _recording(ctx):
            ctx.geometry, ctx.x_hw, ctx.algorithm = geometry, x.shape[2:], algorithm
            ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, weight)
        return _add_bias_nchw(y, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        geometry, algorithm = ctx.geometry, ctx.algorithm
        dx = _conv_forward(grad, weight, geometry, algorithm, out_hw=ctx.x_hw) if need_x else None
        # y = conv_input_grad(x, W) means W's gradient is the convolution weight gradient
        # with dy in the input's role and x in the output-gradient's role
        dw = _conv_backward(x, grad, weight, geometry, grad.shape, algorithm,
                            need_x=False)[1] if need_w else None
        db = grad.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db


def _winograd_transposed(input, weight, kernel, stride, pad, out_pad, dilation, groups) -> bool:
    """A 3x3 stride-1 transposed convolution that conv2d would run by Winograd once rewritten
    as a convolution (padding at most 2, no output_padding)."""
    if not (kernel == (3, 3) and stride == (1, 1) and dilation == (1, 1) and groups == 1
            and max(pad) <= 2 and out_pad == (0, 0)):
        return False
    pads = ((2 - pad[0], 2 - pad[0]), (2 - pad[1], 2 - pad[1]))
    as_conv = ConvGeometry(kernel, stride, pads, dilation, groups)
    backend = get_backend("cupy") if input.device == "cuda" else current_backend()
    as_conv_weight = (weight.shape[1], weight.shape[0], *kernel)  # in/out swapped
    return _use_winograd(backend, input.shape, as_conv_weight, as_conv)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-d transposed convolution (the gradient of ``conv2d`` with respect to its input).

    ``input: (N, C_in, H, W)``, ``weight: (C_in, C_out/groups, kh, kw)``, ``bias: (C_out,)``
    ``-> (N, C_out, H_out, W_out)`` with
    ``H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``.

    ``output_padding`` adds rows/columns at the bottom/right, to pick among the input
    sizes a strided ``conv2d`` maps to the same output size; it must be smaller than
    the stride or the dilation. Note the argument order: ``groups`` before ``dilation``.
    A 3x3 stride-1 transposed convolution large enough for Winograd runs as the equivalent
    ``conv2d`` (kernel flipped, in/out swapped, padding ``2 - padding``).
    """
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias, "(C_in, C_out/groups, kH, kW)")
    groups = _check_groups(groups, op)
    kernel = _check_kernel(op, weight)
    stride = int_pair(stride, "stride", op, minimum=1)
    dilation = int_pair(dilation, "dilation", op, minimum=1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair of ints (PyTorch has no "
                         f"'same'/'valid' for transposed convolutions), got {padding!r}")
    pad = int_pair(padding, "padding", op, minimum=0)
    out_pad = int_pair(output_padding, "output_padding", op, minimum=0)
    for a, s, d in zip(out_pad, stride, dilation, strict=True):
        if a >= s and a >= d:
            raise ValueError(f"{op}: output_padding must be smaller than either stride or "
                             f"dilation, got output_padding={out_pad}, stride={stride}, "
                             f"dilation={dilation}")
    c_in = weight.shape[0]
    if c_in % groups:
        raise ValueError(f"{op}: groups={groups} must divide in_channels={c_in} "
                         f"(weight shape {weight.shape})")
    if input.shape[1] != c_in:
        raise ValueError(
            f"{op}: expected input with C_in={c_in} channels (weight shape {weight.shape} "
            f"with groups={groups}), got input of shape {input.shape}"
        )
    c_out = weight.shape[1] * groups
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},) (C_out), got {bias.shape}")
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + a + 1
                   for n, s, p, d, k, a in zip(input.shape[2:], stride, pad, dilation, kernel,
                                               out_pad, strict=True))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output size {out_hw} is not positive (input "
                         f"{input.shape[2:]}, kernel {kernel}, stride {stride}, padding {pad}, "
                         f"dilation {dilation}); reduce the padding")
    if input.shape[0] == 0:
        return EmptyBatch.apply(input, weight, bias, out_shape=(0, c_out, *out_hw))
    if _winograd_transposed(input, weight, kernel, stride, pad, out_pad, dilation, groups):
        # stride 1, 3x3: the same as a convolution with the kernel flipped and its in/out
        # axes swapped, padded by 2 - padding; conv2d then runs it by Winograd
        flipped = weight[:, :, ::-1, ::-1].transpose(0, 1)
        return conv2d(input, flipped, bias, padding=(2 - pad[0], 2 - pad[1]))
    geometry = ConvGeometry(kernel, stride, ((pad[0], pad[0]), (pad[1], pad[1])), dilation,
                            groups)
    out_shape = (input.shape[0], c_out, *out_hw)
    return TransposedConvolution2d.apply(input, weight, bias, geometry=geometry,
                                         out_shape=out_shape)
