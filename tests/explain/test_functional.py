"""Distance correlation in torch against the dcor package (the oracle; slow first import)."""
import math

import pytest
import torch

from kdbench.explain.functional import (distance_correlation_sqr,
                                        partial_distance_correlation_sqr, u_centered_distances)


@pytest.fixture(scope='module')
def dcor():
    """The oracle, imported once (its first import compiles with numba, ~10-30 s)."""
    import dcor
    return dcor


def _samples(seed: int, n: int, *dims: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for d in dims]


@pytest.mark.parametrize('n, p, q', [(4, 1, 1), (9, 3, 5), (40, 16, 2)])
def test_dcor_matches_the_oracle(dcor, n, p, q):
    x, y, z = _samples(n, n, p, q, 3)
    y = y + 0.5 * x[:, :1]          # some dependence
    assert float(distance_correlation_sqr(x, y)) == pytest.approx(
        dcor.u_distance_correlation_sqr(x.numpy(), y.numpy()), abs=1e-10)
    assert float(partial_distance_correlation_sqr(x, y, z)) == pytest.approx(
        dcor.partial_distance_correlation(x.numpy(), y.numpy(), z.numpy()), abs=1e-10)


def test_u_centring_matches_the_oracle(dcor):
    x, = _samples(1, 7, 3)
    dist = torch.cdist(x, x).numpy()
    torch.testing.assert_close(u_centered_distances(x), torch.from_numpy(dcor.u_centered(dist)))


def test_independent_samples_are_near_zero():
    x, y = _samples(2, 400, 8, 8)
    assert abs(float(distance_correlation_sqr(x, y))) < 0.01


def test_identical_and_similarity_transformed_samples_give_one():
    x, = _samples(3, 30, 6)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64,
                                              generator=torch.Generator().manual_seed(4)))
    moved = 3.0 * x @ rotation + 7.0
    assert float(distance_correlation_sqr(x, x)) == pytest.approx(1.0, abs=1e-12)
    assert float(distance_correlation_sqr(x, moved)) == pytest.approx(1.0, abs=1e-10)
    # float32 features, as models give them
    assert float(distance_correlation_sqr(x.float(), moved.float())) == pytest.approx(1.0,
                                                                                      abs=1e-5)


def test_partial_dcor_removes_a_shared_component(dcor):
    shared, e1, e2 = _samples(5, 300, 4, 4, 4)
    x, y = shared + 0.3 * e1, shared + 0.3 * e2
    assert float(distance_correlation_sqr(x, y)) > 0.7
    partial = float(partial_distance_correlation_sqr(x, y, shared))
    assert abs(partial) < 0.1
    assert partial == pytest.approx(
        dcor.partial_distance_correlation(x.numpy(), y.numpy(), shared.numpy()), abs=1e-10)
    # nothing is left of x once x itself is removed
    assert float(partial_distance_correlation_sqr(x, y, x)) == 0.0


def test_batched_inputs_give_one_value_per_batch():
    x, y, z = (torch.stack(t) for t in zip(_samples(6, 10, 3, 2, 4), _samples(7, 10, 3, 2, 4)))
    batched = distance_correlation_sqr(x, y)
    partial = partial_distance_correlation_sqr(x, y, z)
    assert batched.shape == partial.shape == (2,)
    for b in range(2):
        assert float(batched[b]) == pytest.approx(float(distance_correlation_sqr(x[b], y[b])))
        assert float(partial[b]) == pytest.approx(
            float(partial_distance_correlation_sqr(x[b], y[b], z[b])))


def test_constant_samples_give_zero_without_nan():
    x, = _samples(8, 6, 3)
    value = distance_correlation_sqr(x, torch.ones(6, 2, dtype=torch.float64))
    assert float(value) == 0.0


def test_gradients_are_finite_with_repeated_samples():
    x, y = _samples(9, 8, 5, 3)
    x = torch.cat([x[:4], x[:4]]).float().requires_grad_(True)
    value = distance_correlation_sqr(x, y.float()) + \
        partial_distance_correlation_sqr(x, y.float(), x.detach() ** 2)
    value.backward()
    assert math.isfinite(float(value.detach())) and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize('n', [1, 2, 3])
def test_three_or_fewer_samples_are_refused(n):
    x, y, z = _samples(10, n, 2, 2, 2)
    with pytest.raises(ValueError, match=f'n > 3 samples, got n = {n}'):
        distance_correlation_sqr(x, y)
    with pytest.raises(ValueError, match='n > 3'):
        partial_distance_correlation_sqr(x, y, z)


def test_mismatched_sample_counts_are_refused():
    x, = _samples(11, 5, 2)
    y, = _samples(12, 6, 2)
    with pytest.raises(ValueError, match='same number of samples'):
        distance_correlation_sqr(x, y)
    with pytest.raises(ValueError, match=r'\[n, d\]'):
        distance_correlation_sqr(x.flatten(), y.flatten())
