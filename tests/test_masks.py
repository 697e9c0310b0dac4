import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bssvae.masks import ideal_binary_mask, ideal_ratio_mask, vaem


def test_vaem_sums_to_x_and_is_proportional():
    s_hat = torch.tensor([[[0.2, 0.0], [0.6, 0.0]]])
    x = torch.tensor([[0.4, 0.3]])
    est = vaem(s_hat, x)
    torch.testing.assert_close(est.sum(1), x)
    torch.testing.assert_close(est[0, :, 0], torch.tensor([0.1, 0.3]))
    torch.testing.assert_close(est[0, :, 1], torch.tensor([0.15, 0.15]))  # x_hat = 0: even split


def test_all_zero_inputs_stay_finite():
    est = vaem(torch.zeros(2, 3, 5), torch.zeros(2, 5))
    assert torch.isfinite(est).all() and float(est.abs().sum()) == 0.0


def test_oracles():
    s = torch.tensor([[[0.1, 0.4], [0.3, 0.0]]])
    x = s.sum(1)
    torch.testing.assert_close(ideal_ratio_mask(s, x), s)
    ibm = ideal_binary_mask(s, x)
    torch.testing.assert_close(ibm, torch.tensor([[[0.0, 0.4], [0.4, 0.0]]]))


finite = st.floats(0, 1, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(arrays("float32", st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 16)), elements=finite),
       st.data())
def test_vaem_property(s_hat, data):
    s_hat = torch.from_numpy(s_hat)
    x = torch.from_numpy(data.draw(arrays("float32", (s_hat.shape[0], s_hat.shape[2]), elements=finite)))
    est = vaem(s_hat, x)
    assert torch.isfinite(est).all()
    assert float(est.min()) >= 0
    torch.testing.assert_close(est.sum(1), x, rtol=1e-5, atol=1e-6)


def test_vaem_refuses_non_finite_sources_instead_of_splitting_evenly():
    """NaN decoded sources (e.g. from damaged weights) fail ``x_hat > eps`` and would be split evenly: x / K,
    a plausible-looking estimate."""
    import pytest

    from bssvae.errors import BssvaeError

    s_hat = torch.full((1, 2, 3), 0.5)
    s_hat[0, 1, 2] = float("nan")
    with pytest.raises(BssvaeError, match="s_hat: expected finite values, got 1 NaN or inf entries"):
        vaem(s_hat, torch.ones(1, 3))
    with pytest.raises(BssvaeError, match="x: expected finite values"):
        vaem(torch.ones(1, 2, 3), torch.tensor([[1.0, float("inf"), 0.0]]))
