"""Shape ops against PyTorch: forward and backward, float32 and float64, gradcheck.

reshape/view, permute, transpose, T, flatten, squeeze, unsqueeze, expand, cat, stack,
split (size and sections), chunk; 0-d tensors, negative dims, non-contiguous inputs;
and the errors for invalid shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minicnn
from minicnn.autograd import ops
from tests.autograd.opcheck import LAYOUTS, check, gradcheck_op, make_array

DTYPES = [np.float32, np.float64]

# name: (input shape, minicnn fn, torch fn)
UNARY = {
    "reshape": ((2, 3, 4), lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6)),
    "reshape_tuple_-1": (
        (2, 3, 4),
        lambda x: minicnn.reshape(x, (-1, 4)),
        lambda x: torch.reshape(x, (-1, 4)),
    ),
    "reshape_to_0d": ((1, 1), lambda x: x.reshape(()), lambda x: x.reshape(())),
    "reshape_from_0d": ((), lambda x: x.reshape(1, 1, 1), lambda x: x.reshape(1, 1, 1)),
    "view": ((3, 4), lambda x: x.view(-1), lambda x: x.reshape(-1)),
    "view_as": ((3, 4), lambda x: x.view_as(minicnn.zeros(2, 6)), lambda x: x.reshape(2, 6)),
    "permute": ((2, 3, 4), lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    "permute_fn_neg": (
        (2, 3, 4),
        lambda x: minicnn.permute(x, (-1, -3, 1)),
        lambda x: torch.permute(x, (-1, -3, 1)),
    ),
    "transpose": (
        (2, 3, 4),
        lambda x: minicnn.transpose(x, 0, 2),
        lambda x: torch.transpose(x, 0, 2),
    ),
    "transpose_neg": ((2, 3, 4), lambda x: x.transpose(-1, -2), lambda x: x.transpose(-1, -2)),
    "T_2d": ((3, 4), lambda x: x.T, lambda x: x.T),
    "t_2d": ((3, 4), lambda x: x.t(), lambda x: x.t()),
    "T_1d": ((4,), lambda x: x.T, lambda x: x.permute(0)),  # torch deprecates .T on 1-d
    "flatten": ((2, 3, 4), lambda x: minicnn.flatten(x), lambda x: torch.flatten(x)),
    "flatten_from_1": ((2, 3, 4, 2), lambda x: x.flatten(1), lambda x: x.flatten(1)),
    "flatten_middle": ((2, 3, 4, 2), lambda x: x.flatten(1, 2), lambda x: x.flatten(1, 2)),
    "flatten_neg": ((2, 3, 4, 2), lambda x: x.flatten(-3, -2), lambda x: x.flatten(-3, -2)),
    "flatten_0d": ((), lambda x: x.flatten(), lambda x: x.flatten()),
    "squeeze_all": ((1, 3, 1, 4), lambda x: minicnn.squeeze(x), lambda x: torch.squeeze(x)),
    "squeeze_dim": ((1, 3, 1, 4), lambda x: x.squeeze(2), lambda x: x.squeeze(2)),
    "squeeze_neg_dim": ((1, 3, 1, 4), lambda x: x.squeeze(-4), lambda x: x.squeeze(-4)),
    "squeeze_not_1": ((1, 3, 1, 4), lambda x: x.squeeze(1), lambda x: x.squeeze(1)),
    "squeeze_tuple": ((1, 3, 1, 4), lambda x: x.squeeze((0, 2)), lambda x: x.squeeze((0, 2))),
    "squeeze_0d": ((), lambda x: x.squeeze(0), lambda x: x.squeeze(0)),
    "unsqueeze_0": ((3, 4), lambda x: minicnn.unsqueeze(x, 0), lambda x: torch.unsqueeze(x, 0)),
    "unsqueeze_end": ((3, 4), lambda x: x.unsqueeze(2), lambda x: x.unsqueeze(2)),
    "unsqueeze_neg": ((3, 4), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1)),
    "unsqueeze_neg_first": ((3, 4), lambda x: x.unsqueeze(-3), lambda x: x.unsqueeze(-3)),
    "unsqueeze_0d": ((), lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(0)),
    "expand": ((3, 1), lambda x: x.expand(3, 4), lambda x: x.expand(3, 4)),
    "expand_new_dims": (
        (3, 1),
        lambda x: minicnn.expand(x, (2, 3, 5)),
        lambda x: x.expand(2, 3, 5),
    ),
    "expand_keep": ((1, 4), lambda x: x.expand(2, -1, -1), lambda x: x.expand(2, -1, -1)),
    "expand_0d": ((), lambda x: x.expand(2, 3), lambda x: x.expand(2, 3)),
    "expand_as": ((4,), lambda x: x.expand_as(minicnn.zeros(3, 4)), lambda x: x.expand(3, 4)),
    "split_int": ((7, 3), lambda x: minicnn.split(x, 3), lambda x: torch.split(x, 3)),
    "split_int_dim": ((2, 7), lambda x: x.split(2, dim=1), lambda x: x.split(2, dim=1)),
    "split_sections": ((7, 3), lambda x: x.split([2, 4, 1]), lambda x: x.split([2, 4, 1])),
    "split_sections_neg_dim": (
        (3, 6),
        lambda x: minicnn.split(x, (1, 0, 5), -1),
        lambda x: torch.split(x, (1, 0, 5), -1),
    ),
    "split_bigger_than_dim": ((3, 2), lambda x: x.split(5), lambda x: x.split(5)),
    "chunk": ((7, 3), lambda x: minicnn.chunk(x, 3), lambda x: torch.chunk(x, 3)),
    "chunk_even": ((6, 2), lambda x: x.chunk(3), lambda x: x.chunk(3)),
    "chunk_fewer": ((6, 2), lambda x: x.chunk(4), lambda x: x.chunk(4)),
    "chunk_dim": ((2, 5), lambda x: x.chunk(2, dim=-1), lambda x: x.chunk(2, dim=-1)),
    "clone": ((3, 4), lambda x: x.clone(), lambda x: x.clone()),
    "contiguous": ((3, 4), lambda x: x.contiguous() * 1, lambda x: x.contiguous() * 1),
    "to_float64": ((3, 4), lambda x: x.to(np.float64), lambda x: x.to(torch.float64)),
    "double_then_float": ((3, 4), lambda x: x.double().float(), lambda x: x.double().float()),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_shape_op_matches_torch(name, dtype):
    shape, m_fn, t_fn = UNARY[name]
    check(m_fn, t_fn, [make_array(shape, dtype)])


@pytest.mark.parametrize("layout", LAYOUTS[1:])
@pytest.mark.parametrize("name", sorted(k for k in UNARY if len(UNARY[k][0]) >= 2))
def test_shape_op_non_contiguous(name, layout):
    shape, m_fn, t_fn = UNARY[name]
    check(m_fn, t_fn, [make_array(shape, np.float32, layout=layout)])


# dtype changes are left out: a float32 result is too coarse for gradcheck's bar
@pytest.mark.parametrize("name", sorted(set(UNARY) - {"to_float64", "double_then_float"}))
def test_shape_op_gradcheck(name):
    shape, m_fn, _ = UNARY[name]
    gradcheck_op(m_fn, [make_array(shape, np.float64, layout="transposed")])


def test_views_share_the_gradient_path_with_their_source():
    """x.T, x.reshape, x[::2] used together: each use adds its gradient back into x."""
    x = make_array((4, 6), np.float64)
    check(
        lambda a: a.T.reshape(3, 8) * 2 + a.reshape(8, 3).T.reshape(3, 8),
        lambda a: a.T.reshape(3, 8) * 2 + a.reshape(8, 3).T.reshape(3, 8),
        [x],
    )


# ---------------------------------------------------------------- cat and stack

CAT_CASES = [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 1), (2, 5)], 1),
    ([(2, 3), (2, 1), (2, 5)], -1),
    ([(1, 2, 3), (4, 2, 3)], -3),
    ([(3,), (0,), (2,)], 0),
    ([(2, 3)], 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes,dim", CAT_CASES, ids=str)
def test_cat_matches_torch(shapes, dim, dtype):
    rng = np.random.default_rng(5)
    arrays = [
        make_array(s, dtype, rng=rng, layout="transposed" if len(s) > 1 else "contiguous")
        for s in shapes
    ]
    check(lambda *xs: minicnn.cat(list(xs), dim), lambda *xs: torch.cat(list(xs), dim), arrays)
    check(lambda *xs: ops.concatenate(xs, dim=dim), lambda *xs: torch.cat(xs, dim=dim), arrays)
    gradcheck_op(lambda *xs: minicnn.cat(xs, dim), [a.astype(np.float64) for a in arrays])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,dim", [((3,), 0), ((3,), 1), ((3,), -1), ((2, 3), 1), ((2, 3), -3), ((), 0)], ids=str
)
def test_stack_matches_torch(shape, dim, dtype):
    rng = np.random.default_rng(6)
    arrays = [make_array(shape, dtype, rng=rng) for _ in range(3)]
    check(lambda *xs: minicnn.stack(xs, dim), lambda *xs: torch.stack(xs, dim), arrays)
    gradcheck_op(lambda *xs: minicnn.stack(list(xs), dim), [a.astype(np.float64) for a in arrays])


def test_cat_stack_some_inputs_without_grad_and_mixed_dtypes():
    a, b = make_array((2, 3), np.float32), make_array((1, 3), np.float64)
    check(
        lambda x, y: minicnn.cat([x, y]), lambda x, y: torch.cat([x, y]), [a, b], grad=[True, False]
    )
    m_out, m_in = check(lambda x, y: minicnn.cat([x, y]), lambda x, y: torch.cat([x, y]), [a, b])
    assert m_out[0].dtype == np.float64 and m_in[0].grad.dtype == np.float32
    ints = np.array([[1, 2, 3]], dtype=np.int64)
    check(
        lambda x, y: minicnn.cat([x, y]),
        lambda x, y: torch.cat([x, y]),
        [a, ints],
        grad=[True, False],
    )


def test_split_pieces_are_views_in_the_graph():
    x = make_array((6, 2), np.float64)
    check(
        lambda a: [p * (i + 1) for i, p in enumerate(a.split(2))],
        lambda a: [p * (i + 1) for i, p in enumerate(a.split(2))],
        [x],
    )


def test_only_some_split_pieces_used():
    x = make_array((6, 2), np.float64)
    check(lambda a: a.split(2)[1] * 3, lambda a: a.split(2)[1] * 3, [x])


# ---------------------------------------------------------------- errors


def test_reshape_invalid():
    x = minicnn.ones(2, 3)
    with pytest.raises(
        ValueError, match=r"reshape: shape \(4, 2\) is invalid for input of shape \(2, 3\)"
    ):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="reshape: shape"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match="reshape: shape"):
        x.reshape(-1, 4)
    with pytest.raises(ValueError, match="reshape: shape"):
        x.reshape(-2, -3)


def test_permute_invalid():
    x = minicnn.ones(2, 3)
    for dims in [(0,), (0, 0), (0, 5), (0, 1, 2), (-3, 0)]:
        with pytest.raises(ValueError, match=r"permute: dims .* not a permutation .* \(2, 3\)"):
            x.permute(*dims)


def test_expand_invalid():
    x = minicnn.ones(3, 1)
    with pytest.raises(ValueError, match=r"expand: cannot expand shape \(3, 1\) to \(4, 5\)"):
        x.expand(4, 5)
    with pytest.raises(ValueError, match="expand: 1 sizes given for a 2-d tensor"):
        x.expand(5)
    with pytest.raises(ValueError, match="-1 may only keep an existing dimension"):
        x.expand(-1, 3, 4)


def test_cat_errors():
    with pytest.raises(
        ValueError,
        match=r"cat: tensor 1 has shape \(2, 4\), expected 2 dims matching \(2, 3\) except in "
        r"dim 0",
    ):
        minicnn.cat([minicnn.ones(2, 3), minicnn.ones(2, 4)])
    with pytest.raises(ValueError, match="cat: tensor 1 has shape"):
        minicnn.cat([minicnn.ones(2, 3), minicnn.ones(3)], dim=1)
    with pytest.raises(ValueError, match="cat: expected a non-empty sequence"):
        minicnn.cat([])
    with pytest.raises(ValueError, match="cat: tensor 0 is 0-d"):
        minicnn.cat([minicnn.tensor(1.0), minicnn.tensor(2.0)])
    with pytest.raises(IndexError, match="dim 2 out of range"):
        minicnn.cat([minicnn.ones(2, 3), minicnn.ones(2, 3)], dim=2)


def test_stack_errors():
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape \(3,\), expected \(2,\)"):
        minicnn.stack([minicnn.ones(2), minicnn.ones(3)])
    with pytest.raises(IndexError, match="stack: dim 3 out of range"):
        minicnn.stack([minicnn.ones(2), minicnn.ones(2)], dim=3)


def test_split_chunk_errors():
    x = minicnn.ones(5)
    with pytest.raises(ValueError, match=r"split: sections \[2, 2\] sum to 4, expected 5"):
        x.split([2, 2])
    with pytest.raises(ValueError, match="split_size must be positive, got 0"):
        x.split(0)
    with pytest.raises(ValueError, match="chunks must be positive, got 0"):
        x.chunk(0)


def test_squeeze_unsqueeze_dim_errors():
    with pytest.raises(IndexError, match="unsqueeze: dim 3 out of range"):
        minicnn.ones(2, 3).unsqueeze(3)
    with pytest.raises(IndexError, match="dim 2 out of range"):
        minicnn.ones(2, 1).squeeze(2)
    with pytest.raises(ValueError, match="flatten: start_dim 1 comes after end_dim 0"):
        minicnn.ones(2, 3).flatten(1, 0)
