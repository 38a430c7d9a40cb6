"""DIST: dist_loss against a hand-written loop on tiny tensors (classification and dense
forms, temperatures) and zeros where the maths says so; the registered module's weight."""
import math

import pytest
import torch
from method_helpers import build_method, random_logits, softmax

from kdbench.distill.functional import dist_loss


def _pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = math.sqrt(sum((x - ma) ** 2 for x in a)) * math.sqrt(sum((y - mb) ** 2 for y in b))
    return num / (den + 1e-8)


def _dist_loop(rows_s, rows_t, beta, gamma, temp):
    y_s = [softmax([v / temp for v in r]) for r in rows_s]
    y_t = [softmax([v / temp for v in r]) for r in rows_t]
    inter = 1 - sum(_pearson(a, b) for a, b in zip(y_s, y_t)) / len(y_s)
    cols_s, cols_t = list(zip(*y_s)), list(zip(*y_t))
    intra = 1 - sum(_pearson(a, b) for a, b in zip(cols_s, cols_t)) / len(cols_s)
    return temp ** 2 * (beta * inter + gamma * intra)


@pytest.mark.parametrize('temp, beta, gamma', [(1.0, 1.0, 1.0), (4.0, 1.0, 1.0), (2.0, 0.5, 3)])
def test_dist_matches_a_loop(temp, beta, gamma):
    torch.manual_seed(0)
    s, t = torch.randn(5, 4) * 2, torch.randn(5, 4) * 2
    expected = _dist_loop(s.tolist(), t.tolist(), beta, gamma, temp)
    assert dist_loss(s, t, beta, gamma, temp).item() == pytest.approx(expected, rel=1e-5)


def test_dist_dense_takes_every_pixel_as_a_sample():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    rows = lambda x: [x[n, :, h, w].tolist() for n in range(2) for h in range(2)  # noqa: E731
                      for w in range(2)]
    expected = _dist_loop(rows(s), rows(t), 1.0, 1.0, 1.0)
    assert dist_loss(s, t).item() == pytest.approx(expected, rel=1e-5)


def test_dist_is_zero_for_identical_and_shifted_logits():
    torch.manual_seed(0)
    s = torch.randn(4, 6)
    assert dist_loss(s, s.clone()).item() == pytest.approx(0, abs=1e-5)
    # At T=4 the centred rows are small, so eps=1e-8 (added to the product of the norms,
    # as in the official code) leaves a visible residue: still ~0.
    assert dist_loss(s, s.clone(), temperature=4.0).item() == pytest.approx(0, abs=1e-3)
    # Adding a per-sample constant to the logits leaves the softmax unchanged.
    assert dist_loss(s, s + torch.randn(4, 1)).item() == pytest.approx(0, abs=1e-5)


def test_dist_method_applies_the_outer_weight():
    s, t = random_logits()
    out = build_method('DIST', temperature=4.0)({'logits': s}, {'logits': t})['loss_dist']
    assert out.item() == pytest.approx(2.0 * dist_loss(s, t, temperature=4.0).item())
