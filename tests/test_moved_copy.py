"""T, the moved copy (random shift/rotation/rescale) through which Q reads the categorical code."""

import torch

from infogan_lib.moved_copy import MovedCopy


def _digit_like(n=4):
    x = -torch.ones(n, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0                                   # a vertical bar, like a "1"
    return x


def test_a_move_of_zero_range_is_the_identity():
    x = _digit_like()
    assert torch.allclose(MovedCopy(0, 0, 0)(x), x, atol=1e-5)


def test_a_pure_shift_moves_the_ink_by_that_many_pixels():
    x = _digit_like(1)
    # shift = 1/7 of half the width = 2 px; force the draw to the edge of the range
    g = torch.Generator().manual_seed(0)
    moved = MovedCopy(rotation=0, shift=2 / 14, scale=0)(x, g)
    ys, xs = torch.nonzero(moved[0, 0] > 0, as_tuple=True)
    y0, x0 = torch.nonzero(x[0, 0] > 0, as_tuple=True)
    dx, dy = xs.float().mean() - x0.float().mean(), ys.float().mean() - y0.float().mean()
    assert abs(dx) <= 2.01 and abs(dy) <= 2.01 and (abs(dx) > 0.2 or abs(dy) > 0.2)


def test_a_move_keeps_the_range_and_the_amount_of_ink_roughly():
    x = _digit_like(64)
    moved = MovedCopy()(x, torch.Generator().manual_seed(1))
    assert moved.min() >= -1.0001 and moved.max() <= 1.0001
    ink_before, ink_after = (x + 1).sum((1, 2, 3)), (moved + 1).sum((1, 2, 3))
    assert torch.allclose(ink_after / ink_before, torch.ones(64), atol=0.25)    # scale ≤ ±10 % → area ±21 %
    assert not torch.allclose(moved[0], moved[1])                                 # each image its own T


def test_a_move_is_differentiable_and_seeded():
    x = _digit_like(2).requires_grad_()
    a = MovedCopy()(x, torch.Generator().manual_seed(3))
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    b = MovedCopy()(x.detach(), torch.Generator().manual_seed(3))
    assert torch.equal(a.detach(), b)
