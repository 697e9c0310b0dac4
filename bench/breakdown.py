"""Where a training step's time goes on a CPU: its matrix products against everything else.

The suite's FLOP rate says how far the whole step is from the machine's matmul peak; this says why.
:mod:`torch.profiler` records the ATen operators of a window of steps of our loop with their input
shapes. The matrix products (``aten::mm``, ``aten::addmm``: every Linear layer, forward and
backward) are timed by their own CPU time, and their FLOPs are counted from the shapes (2 m k n per
product), which must equal the analytical count of :func:`bench.flops.step_flops` (the breakdown
records whether it does). Everything else, BatchNorm, ReLU, the sigmoid, the loss, Adam, making the
mixtures and Python, is the rest of the window's wall time.

Two numbers follow. The products' own FLOP rate against the matmul peak says how close the
products themselves run to the hardware. Their share of the step bounds what removing every other
cost could give: the step would run at most ``1 / share`` times faster (``ceiling_mixtures_per_s``).

On a GPU the operators run asynchronously and their CPU times say nothing of the kernels', so the
breakdown is measured on CPUs only.
"""
from __future__ import annotations

import statistics
import time
from typing import Iterator

from bssvae.errors import BssvaeError

#: The operators that carry the matrix products of a Linear layer on a CPU (forward: addmm;
#: gradients of the input and of the weight: mm).
MATMUL_OPS = ("aten::mm", "aten::addmm")
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


def profile_window(steps: Iterator[int], seconds: float, min_steps: int = 3) -> dict:
    """Profile the steps of ``steps`` for ``seconds`` (and at least ``min_steps``) of wall time.

    Returns:
        ``{"steps", "mixtures", "wall_seconds", "matmul_seconds", "matmul_flops", "other_seconds"}``;
        ``other_seconds`` maps every other operator to its own CPU time in the window.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        t0 = time.perf_counter()
        mixtures = n_steps = 0
        while n_steps < min_steps or time.perf_counter() - t0 < seconds:
            mixtures += next(steps)
            n_steps += 1
        wall = time.perf_counter() - t0
    mm_seconds, mm_flops, other = 0.0, 0, {}
    for evt in prof.key_averages(group_by_input_shape=True):
        own = evt.self_cpu_time_total * 1e-6
        if evt.key in MATMUL_OPS:
            mm_seconds += own
            mm_flops += evt.count * matmul_flops(evt.key, evt.input_shapes)
        elif own > 0:
            other[evt.key] = other.get(evt.key, 0.0) + own
    return {"steps": n_steps, "mixtures": mixtures, "wall_seconds": wall, "matmul_seconds": mm_seconds,
            "matmul_flops": mm_flops, "other_seconds": other}


def summarise(windows: list[dict], train_flops_per_mixture: int, peak_flops_per_s: float,
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
        train_flops_per_mixture: the analytical count (:attr:`bench.flops.StepFlops.train_flops`).
        peak_flops_per_s: the measured matmul peak of the step's precision.
        mixtures_per_s: our step's median throughput over the unprofiled windows of the same run.
        authors_mixtures_per_s: the authors'-style loop's, for ``ceiling_ratio_vs_authors``.
    """
    if not windows:
        raise BssvaeError("windows: expected at least one profiled window")
    if not mixtures_per_s or mixtures_per_s <= 0:
        raise BssvaeError(f"mixtures_per_s: expected our step's positive throughput, got {mixtures_per_s!r}")
    med = statistics.median
    mm_per_step = med([w["matmul_seconds"] / w["steps"] for w in windows])
    rate = [w["matmul_flops"] / w["matmul_seconds"] for w in windows if w["matmul_seconds"] > 0]
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
        "matmul_peak_fraction": med(rate) / peak_flops_per_s if rate and peak_flops_per_s else None,
        "matmul_flops_per_mixture": med(counted),
        "matmul_flops_match_analytical_count": all(c == train_flops_per_mixture for c in counted),
        "ceiling_mixtures_per_s": ceiling,
        "ceiling_ratio_vs_authors": (ceiling / authors_mixtures_per_s
                                     if ceiling and authors_mixtures_per_s else None),
        "top_other_ops_seconds_per_step": dict(sorted(other.items(), key=lambda kv: -kv[1])[:TOP_OTHER]),
        "method": "torch.profiler over one window of our step after each repeat of the throughput windows: "
                  f"own CPU time of {', '.join(MATMUL_OPS)} (FLOPs from their input shapes); the step's time is "
                  "the unprofiled windows' median; other operators' times are as profiled",
    }
