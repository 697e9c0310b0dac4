"""Where a training step's time goes on a CPU: its matrix products against everything else.

The suite's FLOP rate says how far the whole step is from the machine's matmul peak; this says why.
:mod:`torch.profiler` records the ATen operators of a window of steps of our loop with their input
shapes and dtypes. The matrix products (``aten::mm``, ``aten::addmm``: every Linear layer, forward and
backward, and Muon's Newton-Schulz iterations) are timed by their own CPU time, and their FLOPs are
counted from the shapes (2 m k n per product), which must equal the analytical count of
:func:`bench.flops.step_flops` plus Muon's (the breakdown records whether it does). They are kept
apart by the precision they ran in: a float32 step with Muon runs its layers' products in float32
and the Newton-Schulz products in bfloat16, and each is measured against its own precision's peak. Everything else, BatchNorm, ReLU, the sigmoid, the loss, Adam, making the
mixtures and Python, is the rest of the window's wall time.

Two numbers follow. The products' own FLOP rate against the matmul peak says how close the
products themselves run to the hardware (with several precisions, the seconds the products would take
at their precisions' peaks per second they took, as :func:`bench.flops.mixed_peak_fraction`). Their share of the step bounds what removing every other
cost could give: the step would run at most ``1 / share`` times faster (``ceiling_mixtures_per_s``).

On a GPU the operators run asynchronously and their CPU times say nothing of the kernels', so the
breakdown is measured on CPUs only.
"""
from __future__ import annotations

import statistics
import time
from typing import Iterator

from bench.flops import mixed_peak_fraction
from bssvae.errors import BssvaeError, check_real

#: The operators that carry the matrix products of a Linear layer on a CPU (forward: addmm;
#: gradients of the input and of the weight: mm).
MATMUL_OPS = ("aten::mm", "aten::addmm")
#: The profiler's names of input dtypes, as the suite's peaks name them.
PROFILER_DTYPES = {"float": "float32", "c10::BFloat16": "bfloat16", "c10::Half": "float16", "double": "float64"}
#: How many of the other operators (by CPU time) a breakdown lists by name.
TOP_OTHER = 8


def matmul_flops(op: str, input_shapes: list) -> int:
    """FLOPs of one call of a matrix-product operator from its recorded input shapes (2 m k n).

    ``aten::mm(a, b)``: a (m, k), b (k, n). ``aten::addmm(bias, a, b)``: the product of a and b (the
    bias's addition is not counted, as :func:`bench.flops.step_flops` does not count it).
    """
    shapes = [s for s in input_shapes if s]
    if op == "aten::mm":
        a, b = shapes[0], shapes[1]
    elif op == "aten::addmm":
        a, b = shapes[-2], shapes[-1]
    else:
        raise BssvaeError(f"op: expected one of {MATMUL_OPS}, got {op!r}")
    if len(a) != 2 or len(b) != 2 or a[1] != b[0]:
        raise BssvaeError(f"{op}: expected shapes (m, k) and (k, n), got {a} and {b}")
    return 2 * a[0] * a[1] * b[1]


def matmul_dtype(op: str, input_dtypes: list) -> str:
    """The precision a matrix product ran in, from the profiler's dtypes of its inputs (those of the two
    factors: ``aten::addmm``'s bias may differ), named as the suite's peaks are (``float32``...)."""
    names = [d for d in (input_dtypes or []) if d and d != "Scalar"]
    factors = names[:2] if op == "aten::mm" else names[-2:]
    if len(factors) != 2:
        raise BssvaeError(f"{op}: expected the dtypes of two factors, got {input_dtypes!r}")
    if factors[0] != factors[1]:
        raise BssvaeError(f"{op}: factors of different dtypes {factors[0]!r} and {factors[1]!r}")
    return PROFILER_DTYPES.get(factors[0], factors[0])


def profile_window(steps: Iterator[int], seconds: float, min_steps: int = 3) -> dict:
    """Profile the steps of ``steps`` for ``seconds`` (and at least ``min_steps``) of wall time.

    Returns:
        ``{"steps", "mixtures", "wall_seconds", "matmul_seconds", "matmul_flops", "matmul_by_dtype",
        "other_seconds"}``; ``matmul_by_dtype`` maps each precision the products ran in to their
        ``{"seconds", "flops"}``, ``other_seconds`` every other operator to its own CPU time in the window.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        t0 = time.perf_counter()
        mixtures = n_steps = 0
        while n_steps < min_steps or time.perf_counter() - t0 < seconds:
            mixtures += next(steps)
            n_steps += 1
        wall = time.perf_counter() - t0
    by_dtype: dict[str, dict] = {}
    other: dict[str, float] = {}
    for evt in prof.events():  # one event per call: its own shapes and dtypes
        own = evt.self_cpu_time_total * 1e-6
        if evt.name in MATMUL_OPS:
            d = by_dtype.setdefault(matmul_dtype(evt.name, evt.input_dtypes), {"seconds": 0.0, "flops": 0})
            d["seconds"] += own
            d["flops"] += matmul_flops(evt.name, evt.input_shapes)
        elif own > 0:
            other[evt.name] = other.get(evt.name, 0.0) + own
    return {"steps": n_steps, "mixtures": mixtures, "wall_seconds": wall,
            "matmul_seconds": sum(d["seconds"] for d in by_dtype.values()),
            "matmul_flops": sum(d["flops"] for d in by_dtype.values()), "matmul_by_dtype": by_dtype,
            "other_seconds": other}


def summarise(windows: list[dict], train_flops_per_mixture: int, peaks: dict[str, float],
              mixtures_per_s: float, authors_mixtures_per_s: float | None = None) -> dict:
    """Medians over profiled windows: the matrix products' time per step, their FLOP rate and its
    fraction of the peak, their share of the step, the throughput ceiling, and the other operators.

    The profiler's own cost (it records every operator with its shapes) slows the profiled steps
    but not the products themselves, which last milliseconds. So the share is taken of the step as
    the unprofiled throughput windows timed it: share = seconds of products per step / (mixtures per
    step / ``mixtures_per_s``). The ceiling, the throughput if nothing but the products took time, is
    mixtures per step / seconds of products per step; against the authors'-style loop it is
    ``ceiling_ratio_vs_authors``.

    Args:
        windows: results of :func:`profile_window`, taken between the throughput windows.
        train_flops_per_mixture: the analytical count (:attr:`bench.flops.StepFlops.train_flops`, plus
            Muon's Newton-Schulz FLOPs per mixture where the step uses it).
        peaks: the measured matmul peak of each precision (``{"float32": ..., "bfloat16": ...}``); the
            products of each precision are measured against its own.
        mixtures_per_s: our step's median throughput over the unprofiled windows of the same run.
        authors_mixtures_per_s: the authors'-style loop's, for ``ceiling_ratio_vs_authors``.
    """
    if not windows:
        raise BssvaeError("windows: expected at least one profiled window")
    if any("matmul_by_dtype" not in w for w in windows):
        raise BssvaeError("windows: expected each window's matmul_by_dtype (from profile_window)")
    dtypes = sorted({dt for w in windows for dt in w["matmul_by_dtype"]})
    unknown = [dt for dt in dtypes if not (peaks or {}).get(dt)]
    if unknown:
        raise BssvaeError(f"peaks: no measured peak for {', '.join(unknown)}, in which products ran "
                          f"(peaks given: {sorted(peaks or {})})")
    check_real("mixtures_per_s", mixtures_per_s, expected="our step's positive throughput", low=0, low_open=True)
    med = statistics.median
    mm_per_step = med([w["matmul_seconds"] / w["steps"] for w in windows])
    rate = [w["matmul_flops"] / w["matmul_seconds"] for w in windows if w["matmul_seconds"] > 0]
    # seconds the products would take at their precisions' peaks, per second they took
    at_peak = [mixed_peak_fraction({dt: d["flops"] / w["matmul_seconds"] for dt, d in w["matmul_by_dtype"].items()},
                                   peaks) for w in windows if w["matmul_seconds"] > 0]
    by_dtype = {}
    for dt in dtypes:
        parts = [w["matmul_by_dtype"].get(dt, {"seconds": 0.0, "flops": 0}) for w in windows]
        dt_rate = [p["flops"] / p["seconds"] for p in parts if p["seconds"] > 0]
        by_dtype[dt] = {"seconds_per_step": med([p["seconds"] / w["steps"] for p, w in zip(parts, windows)]),
                        "flops_per_mixture": med([p["flops"] / w["mixtures"] for p, w in zip(parts, windows)]),
                        "flops_per_s": med(dt_rate) if dt_rate else None,
                        "peak_fraction": med(dt_rate) / peaks[dt] if dt_rate else None}
    counted = [w["matmul_flops"] / w["mixtures"] for w in windows]
    steps = sum(w["steps"] for w in windows)
    per_step = sum(w["mixtures"] for w in windows) / steps
    profiled_step = sum(w["wall_seconds"] for w in windows) / steps
    other: dict[str, float] = {}
    for w in windows:
        for name, s in w["other_seconds"].items():
            other[name] = other.get(name, 0.0) + s / steps
    ceiling = per_step / mm_per_step if mm_per_step > 0 else None
    return {
        "windows": len(windows), "steps": steps, "mixtures_per_step": per_step,
        "step_seconds": per_step / mixtures_per_s,
        "profiled_step_seconds": profiled_step,
        "matmul_seconds_per_step": mm_per_step,
        "matmul_share": mm_per_step * mixtures_per_s / per_step,
        "matmul_flops_per_s": med(rate) if rate else None,
        "matmul_peak_fraction": med(at_peak) if at_peak else None,
        "matmul_peak_dtype": "+".join(dtypes),
        "matmul_by_dtype": by_dtype,
        "matmul_flops_per_mixture": med(counted),
        "matmul_flops_match_analytical_count": all(c == train_flops_per_mixture for c in counted),
        "ceiling_mixtures_per_s": ceiling,
        "ceiling_ratio_vs_authors": (ceiling / authors_mixtures_per_s
                                     if ceiling and authors_mixtures_per_s else None),
        "top_other_ops_seconds_per_step": dict(sorted(other.items(), key=lambda kv: -kv[1])[:TOP_OTHER]),
        "method": "torch.profiler over one window of our step after each repeat of the throughput windows: "
                  f"own CPU time of {', '.join(MATMUL_OPS)} (FLOPs from their input shapes, each against the "
                  "peak of the dtype it ran in; with several, the seconds at their peaks per second taken); the step's time is "
                  "the unprofiled windows' median; other operators' times are as profiled",
    }
