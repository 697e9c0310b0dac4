"""Errors a user can act on, and small validation helpers used at the public boundary."""
from __future__ import annotations

import math

import numpy as np
import torch


class BssvaeError(ValueError):
    """An error caused by the user's input, with a message that names the problem.

    The command line prints these without a traceback and exits non-zero.
    """


class DataError(BssvaeError):
    """A data file is missing, truncated, corrupt, or cannot be fetched."""


class RunDirError(BssvaeError):
    """A run directory is missing, incomplete, or from an incompatible version or dataset."""


def _describe(x) -> str:
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def check_finite(name: str, x: torch.Tensor, why: str = "") -> None:
    """Refuse a tensor with NaN or inf entries, naming how many (``why``, if given, follows in brackets)."""
    if not bool(torch.isfinite(x).all()):
        raise BssvaeError(f"{name}: expected finite values, got {int((~torch.isfinite(x)).sum())} NaN or inf "
                          f"entries{f' ({why})' if why else ''}")


def check_tensor(
    name: str,
    x,
    *,
    ndim: int | tuple[int, ...] | None = None,
    last_dim: int | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    allow_empty: bool = False,
    tol: float = 1e-6,
) -> torch.Tensor:
    """Validate an array-like argument and return it as a floating torch tensor.

    Args:
        name: the argument's name, used in the error message.
        x: a torch tensor or numpy array.
        ndim: the accepted number(s) of dimensions.
        last_dim: the required size of the last dimension.
        min_value, max_value: the accepted value range (``tol`` of slack for rounding).
        allow_empty: whether a tensor with zero elements is accepted.

    Raises:
        BssvaeError: naming the argument, what was expected and what was received.
    """
    if isinstance(x, np.ndarray):
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise BssvaeError(f"{name}: expected a numeric array, got {_describe(x)}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise BssvaeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {_describe(x)}")
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in accepted:
            want = " or ".join(str(a) for a in accepted)
            raise BssvaeError(f"{name}: expected {want} dimensions, got {_describe(x)}")
    if last_dim is not None and (x.ndim == 0 or x.shape[-1] != last_dim):
        raise BssvaeError(f"{name}: expected last dimension {last_dim}, got {_describe(x)}")
    if not allow_empty and x.numel() == 0:
        raise BssvaeError(f"{name}: expected a non-empty batch, got {_describe(x)}")
    if not torch.is_floating_point(x):
        x = x.float()
    if x.numel():
        check_finite(name, x)
        lo, hi = float(x.min()), float(x.max())
        if min_value is not None and lo < min_value - tol:
            raise BssvaeError(f"{name}: expected values >= {min_value}, got a minimum of {lo:.6g}")
        if max_value is not None and hi > max_value + tol:
            raise BssvaeError(f"{name}: expected values <= {max_value}, got a maximum of {hi:.6g}")
    return x


def check_int(name: str, value, *, minimum: int | None = None) -> int:
    """Validate an integer argument (bools and non-integral floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise BssvaeError(f"{name}: expected an integer, got {_describe(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise BssvaeError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def check_real(name: str, value, *, expected: str = "a finite number", low: float | None = None,
               high: float | None = None, low_open: bool = False, high_open: bool = False):
    """Validate a real-number argument and return it as a Python int or float: an int or float, or a numpy integer or
    floating scalar (not a bool), finite, and within ``low`` and ``high`` where given (each end excluded where its
    ``*_open`` is set). Strings, tensors and None are refused. The error reads "NAME: expected EXPECTED, got VALUE",
    so ``expected`` should say the accepted range in words."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = int(value) if isinstance(value, (int, np.integer)) else float(value)
        try:
            ok = math.isfinite(value)
        except OverflowError:  # an int beyond the float range
            ok = False
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise BssvaeError(f"{name}: expected {expected}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """Validate a true-or-false argument (1, 0 and strings are refused: a config file's "false" is not False)."""
    if not isinstance(value, bool):
        raise BssvaeError(f"{name}: expected true or false, got {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Validate that ``value`` is one of ``choices``."""
    if value not in choices:
        raise BssvaeError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value
