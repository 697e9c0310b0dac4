"""The validation helpers of bssvae.errors: what each accepts, what it refuses, and that the message names the input."""
import math

import numpy as np
import pytest
import torch

from bssvae.errors import (BssvaeError, DataError, RunDirError, check_bool, check_choice, check_finite, check_int,
                           check_real, check_tensor)


def test_errors_a_user_can_act_on_are_value_errors():
    # the command line prints BssvaeError without a traceback; callers that catch ValueError still catch it
    assert issubclass(BssvaeError, ValueError)
    assert issubclass(DataError, BssvaeError) and issubclass(RunDirError, BssvaeError)


def test_check_int_accepts_integers_and_integral_floats_only():
    assert check_int("n", 3) == 3 and check_int("n", np.int64(4)) == 4 and check_int("n", 5.0) == 5
    assert type(check_int("n", np.int64(4))) is int
    for bad in (True, 2.5, math.nan, math.inf, "3", None):
        with pytest.raises(BssvaeError, match="n: expected an integer, got"):
            check_int("n", bad)
    with pytest.raises(BssvaeError, match="n: expected an integer >= 1, got 0"):
        check_int("n", 0, minimum=1)


@pytest.mark.parametrize("value, ok", [(0, True), (0.5, True), (1, False), (-1e-9, False), (math.nan, False),
                                       (math.inf, False), (True, False), ("0.5", False), (None, False)])
def test_check_real_half_open_interval(value, ok):
    """[0, 1): the low end included, the high end excluded; bools, strings, NaN and inf refused."""
    if ok:
        assert check_real("m", value, expected="a number in [0, 1)", low=0, high=1, high_open=True) == value
    else:
        with pytest.raises(BssvaeError, match=r"^m: expected a number in \[0, 1\), got "):
            check_real("m", value, expected="a number in [0, 1)", low=0, high=1, high_open=True)


def test_check_real_ends_and_default():
    assert check_real("x", -1e300) == -1e300  # any finite number by default
    with pytest.raises(BssvaeError, match="x: expected a finite number, got inf"):
        check_real("x", math.inf)
    assert check_real("lr", 1e-3, low=0, low_open=True) == 1e-3
    with pytest.raises(BssvaeError, match="lr: expected a positive learning rate, got 0"):
        check_real("lr", 0, expected="a positive learning rate", low=0, low_open=True)
    assert check_real("f", 1, high=1) == 1  # a closed high end includes it
    with pytest.raises(BssvaeError):
        check_real("f", 1, high=1, high_open=True)


def test_check_real_takes_numpy_scalars_as_python_numbers():
    """numpy scalars (what an array's element is) pass and come back as Python numbers, so a config holding one still
    writes JSON; an int past the float range is refused, not an OverflowError."""
    for given, want in ((np.float32(0.5), 0.5), (np.float64(0.25), 0.25), (np.int64(3), 3)):
        got = check_real("x", given)
        assert got == want and type(got) is type(want)
    with pytest.raises(BssvaeError, match="x: expected a finite number"):
        check_real("x", 10 ** 400)
    with pytest.raises(BssvaeError, match="x: expected a finite number"):
        check_real("x", torch.tensor(0.5))


def test_the_callers_refuse_what_check_real_refuses():
    """Each call site names its argument and the range it accepts, with the bounds the docs give."""
    from bssvae.confidence import t_interval
    from bssvae.config import make_config
    from bssvae.counting import count_sources
    from bssvae.paper import rounding_floor

    with pytest.raises(BssvaeError, match=r"level: expected a confidence level in \(0, 1\), got '0.9'"):
        t_interval([1.0, 2.0], level="0.9")
    assert t_interval([1.0, 2.0], level=np.float32(0.5)).n == 2
    with pytest.raises(BssvaeError, match="published: expected a non-negative number as the paper prints, got inf"):
        rounding_floor(math.inf)
    with pytest.raises(BssvaeError, match="threshold: expected a finite number, got nan"):
        count_sources(torch.ones(2, 3), math.nan)
    with pytest.raises(BssvaeError, match=r"muon_momentum: expected a number in \[0, 1\), got 1.0"):
        make_config("smoke", optimizer="muon", muon_momentum=1.0)
    c = make_config("smoke", lr=np.float32(0.5), budget_minutes=np.int64(2), beta=np.float64(0.25))
    assert (type(c.lr), type(c.budget_minutes), type(c.beta)) == (float, int, float)
    assert c.to_dict()["lr"] == 0.5  # JSON-safe


def test_refine_refuses_a_learning_rate_or_prior_weight_out_of_range():
    from bssvae.config import ModelConfig
    from bssvae.model import VAEBSS
    from bssvae.refine import refine_latents

    model = VAEBSS(ModelConfig(input_dim=4, hidden_dims=(3,), latent_dim=2, n_sources=2))
    x = torch.rand(2, 4) * 0.5
    for kwargs, match in (({"lr": math.inf}, "lr: expected a positive learning rate, got inf"),
                          ({"lr": 0.0}, "lr: expected a positive learning rate, got 0.0"),
                          ({"prior_weight": -1.0}, r"prior_weight: expected a weight >= 0, got -1.0")):
        with pytest.raises(BssvaeError, match=match):
            refine_latents(model, x, steps=1, **kwargs)
    assert refine_latents(model, x, steps=1, prior_weight=0.0).shape == (2, 2, 2)


def test_check_bool_refuses_lookalikes():
    assert check_bool("compile", True) is True and check_bool("compile", False) is False
    for bad in (1, 0, "false", None, np.bool_(True)):
        with pytest.raises(BssvaeError, match="compile: expected true or false, got"):
            check_bool("compile", bad)


def test_check_choice_lists_the_choices():
    assert check_choice("optimizer", "adam", {"adam", "muon"}) == "adam"
    with pytest.raises(BssvaeError, match=r"optimizer: expected one of \['adam', 'muon'\], got 'sgd'"):
        check_choice("optimizer", "sgd", {"muon", "adam"})


def test_check_tensor_and_check_finite():
    x = check_tensor("x", np.zeros((2, 3), dtype=np.uint8), ndim=2, last_dim=3, min_value=0, max_value=1)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    with pytest.raises(BssvaeError, match="x: expected 2 dimensions, got Tensor of shape"):
        check_tensor("x", torch.zeros(3), ndim=2)
    with pytest.raises(BssvaeError, match="x: expected last dimension 4"):
        check_tensor("x", torch.zeros(2, 3), last_dim=4)
    with pytest.raises(BssvaeError, match="x: expected a non-empty batch"):
        check_tensor("x", torch.zeros(0, 3))
    with pytest.raises(BssvaeError, match="x: expected values <= 1, got a maximum of 2"):
        check_tensor("x", torch.full((2,), 2.0), max_value=1)
    with pytest.raises(BssvaeError, match="x: expected a numeric array"):
        check_tensor("x", np.array(["a"]))
    with pytest.raises(BssvaeError, match="x: expected a torch.Tensor or numpy.ndarray, got list"):
        check_tensor("x", [0.0])
    with pytest.raises(BssvaeError, match=r"x_hat: expected finite values, got 2 NaN or inf entries \(diverged\)"):
        check_finite("x_hat", torch.tensor([0.0, math.nan, math.inf]), why="diverged")
