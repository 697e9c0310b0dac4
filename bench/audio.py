"""Training throughput and peak memory of the audio model at Table I's sizes (32768 inputs).

Runs in its own process (``python -m bench.audio``, which prints one JSON object) so that the
peak resident memory it reports belongs to this model alone. The step is ours (autocast when the
profile trains in bf16, :func:`bssvae.losses.negative_elbo`, Adam); the inputs are random
non-negative spectrogram-shaped batches, because the cost of a step does not depend on the values
and building the audio data set is the audio task's business, not this benchmark's. The
benchmark is skipped, with a note saying so, while :mod:`bssvae.audio` cannot be imported.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.flops import step_flops


def _rss_mib() -> float:
    """Peak resident memory of this process so far (MiB).

    Linux's ``VmHWM`` belongs to this process since it started; ``ru_maxrss`` would not do here, as a
    child started from a large process inherits the parent's high-water mark through fork.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    scale = 1024.0 ** 2 if sys.platform == "darwin" else 1024.0  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def audio_available() -> str | None:
    """None if :mod:`bssvae.audio` imports, else the reason it does not."""
    try:
        import bssvae.audio  # noqa: F401
    except Exception as e:  # ImportError, or an error inside a module still being written
        return f"{type(e).__name__}: {e}"
    return None


def audio_model_config(profile: str, which: str = "table1"):
    """The audio model to time, and the precision the profile trains it in.

    ``which="table1"``: Table I's MUMS row (32768 inputs); ``which="profile"``: the model the
    profile's audio settings train (the ``cpu`` profile trains a smaller one).

    Returns:
        (ModelConfig, precision, the profile's audio batch size or None).
    """
    from bssvae.config import PROFILES, ModelConfig, make_config

    if "audio" in PROFILES.get(profile, {}):
        cfg = make_config(profile, "audio", "vae", 2)
        model = cfg.model if which == "profile" else ModelConfig.audio(2)
        return model, cfg.precision, cfg.batch_size
    return ModelConfig.audio(2), "fp32", None


def run_audio(device: str, batch_size: int, steps: int, profile: str, which: str = "table1",
              precision: str | None = None) -> dict:
    """Time ``steps`` training steps of the audio model (after one warm-up step) and measure memory."""
    from bssvae.losses import negative_elbo
    from bssvae.model import VAEBSS

    dev = torch.device(device)
    rss0 = _rss_mib()
    model_config, profile_precision, profile_batch = audio_model_config(profile, which)
    precision = precision or profile_precision
    torch.manual_seed(0)
    model = VAEBSS(model_config).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    n_params = sum(p.numel() for p in model.parameters())
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    x = torch.rand(batch_size, model_config.input_dim, device=dev) * 0.5
    amp = precision == "bf16"
    times = []
    for i in range(steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        terms = negative_elbo(x, out, 0.5)
        opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i > 0:  # the first step allocates Adam's state
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    flops = step_flops(model_config)
    result = {
        "model": which, "input_dim": model_config.input_dim, "hidden_dims": list(model_config.hidden_dims),
        "latent_dim": model_config.latent_dim, "n_sources": model_config.n_sources, "parameters": n_params,
        "batch_size": batch_size, "profile_batch_size": profile_batch, "precision": precision, "steps_timed": steps,
        "step_seconds_median": step_s, "mixtures_per_s": batch_size / step_s,
        "train_flops_per_mixture": flops.train_flops, "achieved_flops_per_s": flops.train_flops * batch_size / step_s,
        "data": "random non-negative inputs of the model's size (a step's cost does not depend on the values)",
    }
    if dev.type == "cuda":
        result["peak_memory_mib"] = torch.cuda.max_memory_allocated(dev) / 2 ** 20
        result["memory_kind"] = "torch.cuda.max_memory_allocated"
    else:
        result["peak_memory_mib"] = _rss_mib()
        result["baseline_rss_mib"] = rss0
        result["memory_kind"] = ("peak resident set size of the process that ran only this model (VmHWM), "
                                 "its imports (baseline_rss_mib) included")
    return result


def audio_benchmark(device: str, batch_size: int, steps: int, profile: str, timeout_s: float = 600) -> dict:
    """Table I's audio model (and the profile's, when it differs), each in a child process.

    Returns:
        ``{"table1": {...}, "profile": {...}}``, or ``{"skipped": reason}`` while
        :mod:`bssvae.audio` cannot be imported; a model whose run failed has ``{"skipped": reason}``.
    """
    reason = audio_available()
    if reason is not None:
        return {"skipped": f"bssvae.audio is not importable yet ({reason}); the audio benchmark runs once it lands"}
    out = {}
    table1 = audio_model_config(profile, "table1")[0]
    own = audio_model_config(profile, "profile")[0]
    for which in ("table1", "profile") if own != table1 else ("table1",):
        cmd = [sys.executable, "-m", "bench.audio", "--device", device, "--batch-size", str(batch_size),
               "--steps", str(steps), "--profile", profile, "--model", which]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  cwd=Path(__file__).resolve().parents[1])
        except subprocess.TimeoutExpired:
            out[which] = {"skipped": f"the audio benchmark took longer than {timeout_s:.0f} s"}
            continue
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            out[which] = {"skipped": f"the audio benchmark failed: {' | '.join(tail)}"}
            continue
        out[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.audio", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--batch-size", type=int, default=4, help="mixtures per step (default: 4)")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step (default: 3)")
    p.add_argument("--profile", default="cpu", help="profile whose audio precision (and model) to use (default: cpu)")
    p.add_argument("--model", choices=("table1", "profile"), default="table1",
                   help="Table I's audio model, or the profile's own (default: table1)")
    args = p.parse_args(argv)
    from bssvae.train import configure_threads

    if args.device == "cpu":
        configure_threads()
    print(json.dumps(run_audio(args.device, args.batch_size, args.steps, args.profile, args.model)))


if __name__ == "__main__":
    main()
