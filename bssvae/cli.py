"""The ``bssvae`` command line: train, evaluate, separate, sweep.

Every error caused by the user's input is printed as one line (``bssvae: error: ...``) with a
non-zero exit status and no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .errors import BssvaeError, RunDirError

EXIT_USAGE = 2


def _steps(text: str) -> int:
    """argparse type for a number of steps: an integer >= 0 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more steps, got {text!r}")
    return value


def _minutes(text: str) -> float:
    """argparse type for a training-time budget: a positive, finite number of minutes."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text!r}")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from .config import LR_SCHEDULES, MUON_LAYERS, OPTIMIZERS, PROFILES, TASKS, WSD_DECAY_FRACTION

    p.add_argument("--profile", default="cpu", choices=sorted(PROFILES),
                   help="named settings: smoke (seconds, for tests), cpu (about 15 min per model on 2 "
                        "CPU cores), paper (the authors' scale, for a GPU), authors (their exact recipe) "
                        "(default: %(default)s)")
    p.add_argument("--task", default="mnist", choices=TASKS, help="dataset (default: %(default)s)")
    p.add_argument("--method", default="vae",
                   help="vae (gives the VAE and VAEM rows), ae, or a baseline: nmf, glo, mixit, ibm, irm "
                        "(default: %(default)s)")
    p.add_argument("-K", "--n-sources", type=int, default=2,
                   help="K, the number of sources the model assumes (default: %(default)s)")
    p.add_argument("-M", "--n-digits", type=int, default=None,
                   help="M, the number of true sources per mixture (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="override the profile's number of epochs")
    p.add_argument("--minutes", type=_minutes, default=None,
                   help="a training-time budget: stop at the first step that reaches it (or after the epochs, "
                        "if sooner), a decaying learning rate (cosine, linear, wsd) reaching zero there; the run is "
                        "then not bit-reproducible, and its rows record the epochs it trained (default: none)")
    p.add_argument("--batch-size", type=int, default=None, help="override the profile's batch size")
    p.add_argument("--lr", type=float, default=None, help="override the profile's learning rate")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                   help="override the profile's learning-rate schedule: cosine or linear (down to zero at the last "
                        "epoch, or at the --minutes budget), wsd (the peak held, then a straight line to zero over "
                        f"the last {100 * WSD_DECAY_FRACTION:g} %% of the run, or --wsd-decay-fraction), exponential "
                        "(x 0.9998 per epoch, the authors'), constant")
    p.add_argument("--wsd-decay-fraction", type=float, default=None,
                   help="with --lr-schedule wsd (the cpu profile's VAE and AE train with it), the last "
                        "fraction of the run, in (0, 1], over which the learning rate falls from its peak to zero "
                        f"(default: {WSD_DECAY_FRACTION:g}; 1 is the linear schedule)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="override the profile's optimizer: adam (the authors', every profile's but the cpu profile's "
                        "VAE and AE in bf16, which train with muon and take the Adam recipe of its baselines "
                        "with --optimizer adam) or muon (Muon on "
                        "the hidden layers' weight matrices, Adam on the rest, one learning rate for both; it "
                        "multiplies bf16 matrices at each step, slow on CPUs without native bf16)")
    p.add_argument("--muon-layers", choices=MUON_LAYERS, default=None,
                   help="with --optimizer muon, the weight matrices Muon updates: hidden (those between hidden "
                        "layers) or all (every Linear layer's); Adam updates the rest (default: hidden)")
    p.add_argument("--muon-ns-steps", type=int, default=None,
                   help="with --optimizer muon, its Newton-Schulz iterations per step (default: 5)")
    p.add_argument("--muon-momentum", type=float, default=None,
                   help="with --optimizer muon, the decay of its Nesterov momentum, in [0, 1) (default: 0.95)")
    p.add_argument("--muon-lr-scale", type=float, default=None,
                   help="with --optimizer muon, its learning rate as a multiple of --lr, which the Adam beside it "
                        "takes; the schedule scales both alike (default: 1, one learning rate for both)")
    p.add_argument("--muon-weight-decay", type=float, default=None,
                   help="with --optimizer muon, the decoupled weight decay of its matrices: each step multiplies "
                        "them by 1 - (Muon's learning rate) x this (default: 0, none)")
    p.add_argument("--beta", type=float, default=None,
                   help="override the weight of the KL term in the loss (paper: 0.5; every profile uses it): "
                        "an ablation, since the paper's objective is the one with 0.5")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                   help="override the profile's precision (bf16: autocast for matrix products; auto: bf16 "
                        "where the device computes it natively, fp32 elsewhere)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="run directory (default: results/<profile>/runs/<task>-<method>-K<K>-M<M>-seed<seed>)")


def _config_from(args, reload_finished: bool = False):
    """The run the options ask for; with ``reload_finished``, a finished run in its directory is taken in
    the precision it trained in where ``--precision`` is not given (:func:`bssvae.train.make_run_config`)."""
    from .config import make_config
    from .train import make_run_config

    settings = dict(task=args.task, method=args.method, n_sources=args.n_sources,
                    n_digits=args.n_digits, seed=args.seed, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
                    wsd_decay_fraction=args.wsd_decay_fraction,
                    optimizer=args.optimizer, muon_layers=args.muon_layers, muon_ns_steps=args.muon_ns_steps,
                    muon_momentum=args.muon_momentum, muon_lr_scale=args.muon_lr_scale,
                    muon_weight_decay=args.muon_weight_decay,
                    beta=args.beta, budget_minutes=args.minutes,
                    precision=args.precision, device=args.device)
    if reload_finished:
        return make_run_config(args.profile, run_dir=args.run_dir, **settings)
    return make_config(args.profile, **settings)


def cmd_train(args) -> int:
    from .train import train

    config = _config_from(args, reload_finished=not args.restart)
    result = train(config, args.run_dir, resume=not args.restart, progress=not args.quiet,
                   write_results=not args.no_results)
    for row in result["rows"]:
        metrics = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
        print(json.dumps(metrics))
    print(f"run directory: {result['run_dir']}")
    return 0


def cmd_evaluate(args) -> int:
    import time

    from .refine import REFINE_LR, REFINE_PRIOR
    from .results import append_rows, atomic_write_json, provenance, results_dir
    from .train import (build_task, evaluate_model, load_model, read_finished, recorded_training, resolve_device,
                        write_npz)

    try:  # checked before the evaluation, which may take minutes
        prev = read_finished(args.run) or {}
    except RunDirError:
        if not args.write:
            raise
        prev = {}  # unreadable: --write replaces it
    model, config = load_model(args.run, "cpu")
    device = resolve_device(args.device)
    model = model.to(device)
    task = build_task(config, device)
    t0 = time.perf_counter()
    rows, examples = evaluate_model(model, task, config, args.run, float("nan"), str(device),
                                    refine_steps=args.refine_steps, write_audio=args.write)
    seconds = time.perf_counter() - t0
    # Training facts stay the run's (train_seconds, device: where it was trained, and epochs: those
    # a budget let it train), printed and written alike; vaem-refined is the vaem model, so it takes vaem's.
    # Without a readable metrics.json, they are those its provenance.json recorded when training ended.
    trained = {r["method"]: r for r in prev.get("rows", [])}
    recorded = recorded_training(args.run)
    for row in rows:
        before = trained.get(row["method"], trained.get("vaem", recorded))
        for key in ("train_seconds", "device", "epochs"):
            row[key] = before.get(key, row[key])
    for row in rows:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))
    if args.write:
        extra = {}
        if args.refine_steps:
            extra["refinement"] = {"steps": args.refine_steps, "lr": REFINE_LR, "prior_weight": REFINE_PRIOR,
                                   "method": "vaem-refined"}
        evaluation = provenance(str(device), eval_seconds=round(seconds, 2), **extra)
        write_npz(args.run / "examples.npz", examples)
        atomic_write_json(args.run / "metrics.json", {**prev, "rows": rows, "evaluation": evaluation})
        if not args.no_results:
            append_rows(results_dir(config.profile) / f"{task.name}.csv", rows)
    return 0


def _png_pixels(im) -> np.ndarray:
    """A PNG's pixels as an (H, W) float32 array in [0, 1]: see :func:`read_mixtures`."""
    from PIL import Image

    mode = im.mode
    if mode in ("I;16", "I", "F", "L") and "transparency" not in im.info:
        arr = np.asarray(im)
    elif mode in ("LA", "RGBA", "PA") or "transparency" in im.info:
        # MNIST digits are white ink on black: a transparent pixel is background, so composite onto black
        # (convert("L") would drop the alpha and turn a white digit on a transparent ground all white).
        black = Image.new("RGBA", im.size, (0, 0, 0, 255))
        arr, mode = np.asarray(Image.alpha_composite(black, im.convert("RGBA")).convert("L")), "L"
    else:
        arr, mode = np.asarray(im.convert("L")), "L"
    return arr.astype(np.float32) / (65535.0 if mode.startswith("I;16") else 255.0)


def read_mixtures(path: Path) -> np.ndarray:
    """Read MNIST-like mixtures for ``separate``: a .npy shaped (B, 28, 28) or (28, 28) in [0, 1], or a PNG.

    A PNG must be 28 x 28. Colour PNGs are converted to grayscale (ITU-R 601 luma, as Pillow's
    ``convert("L")``); a PNG with transparency is first composited onto black, MNIST's background
    (its digits are white ink on black). 8-bit pixels are divided by 255. Any other size is rejected
    (resizing would silently change what the model sees).

    Returns: float32 array (B, 28, 28).
    """
    path = Path(path)
    if not path.exists():
        raise BssvaeError(f"INPUT: file {path} does not exist")
    if not path.is_file():
        raise BssvaeError(f"INPUT: {path} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)  # never unpickle: object arrays could run code
        except (ValueError, OSError, EOFError) as e:
            raise BssvaeError(f"INPUT: {path} is not a readable .npy array of numbers (truncated, not .npy, "
                              "or an object/pickle array, which is refused)") from e
        if not isinstance(arr, np.ndarray):  # np.load opens a zip as an .npz archive, whatever its name
            arr.close()
            raise BssvaeError(f"INPUT: {path} is an .npz archive, not a .npy array (save one array with np.save)")
        if arr.dtype.byteorder not in ("=", "|"):  # e.g. big-endian '>f4': torch takes native order only
            arr = arr.astype(arr.dtype.newbyteorder("="))
    elif suffix == ".png":
        from PIL import Image, UnidentifiedImageError

        try:
            im = Image.open(path)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise BssvaeError(f"INPUT: {path} is not a readable PNG image ({e})") from e
        with im:
            if im.size != (28, 28):
                raise BssvaeError(f"INPUT: expected a 28 x 28 PNG, got {im.size[0]} x {im.size[1]} in {path} "
                                  "(resize it yourself; bssvae does not resample digits)")
            try:
                arr = _png_pixels(im)
            except (OSError, ValueError) as e:  # OSError: e.g. a truncated file, read here
                raise BssvaeError(f"INPUT: {path} is not a readable PNG image ({e})") from e
    else:
        raise BssvaeError(f"INPUT: expected a .npy or .png file, got {path.name!r}")
    if arr.dtype == np.uint8:
        raise BssvaeError("INPUT: expected float values in [0, 1], got uint8 pixels (divide by 255 first)")
    if np.iscomplexobj(arr):
        raise BssvaeError(f"INPUT: expected real values in [0, 1], got a {arr.dtype} array")
    if arr.ndim not in (2, 3) or arr.shape[-2:] != (28, 28):  # the file's own shape, before a batch axis is added
        raise BssvaeError(f"INPUT: expected shape (B, 28, 28) or (28, 28), got {tuple(arr.shape)} in {path}")
    if arr.ndim == 2:
        arr = arr[None]
    from .errors import check_tensor

    check_tensor("INPUT", arr, min_value=0.0, max_value=1.0)
    return arr.astype(np.float32)


def cmd_separate(args) -> int:
    from .results import atomic_write_bytes
    from .train import load_model, read_run_config

    task = read_run_config(args.run).task
    if task != "mnist":  # said before its weights are loaded, which an audio run may not have here
        raise BssvaeError(f"--run: {args.run} is a {task!r} run; `separate` takes MNIST-like images")
    output = Path(args.output)
    if not str(output).endswith(".npy"):
        raise BssvaeError(f"OUTPUT: expected a path ending in .npy, got {str(output)!r}")
    out_dir = output.parent
    if not out_dir.is_dir():
        raise BssvaeError(f"OUTPUT: directory {out_dir} does not exist (or is not a directory)")
    if output.is_dir():
        raise BssvaeError(f"OUTPUT: {output} is a directory")
    if not os.access(out_dir, os.W_OK | os.X_OK):  # said before the separation, not after it
        raise BssvaeError(f"OUTPUT: cannot write {output}: no permission to write in {out_dir}")
    if output.exists() and Path(args.input).exists() and output.resolve() == Path(args.input).resolve():
        raise BssvaeError(f"OUTPUT: {output} is INPUT; writing it would replace the mixtures (name another file)")
    model, _ = load_model(args.run, "cpu")
    x = read_mixtures(args.input)
    est = model.separate(x.reshape(x.shape[0], -1), mask=not args.no_mask, refine_steps=args.refine_steps)
    out = est.numpy().reshape(x.shape[0], model.n_sources, 28, 28)
    import io

    buf = io.BytesIO()
    np.save(buf, out)
    try:
        atomic_write_bytes(output, buf.getvalue())
    except OSError as e:  # e.g. a folder this user may not write
        raise BssvaeError(f"OUTPUT: cannot write {output}: {e.strerror or e}") from e
    kind = "decoded sources" if args.no_mask else "VAEM estimates"
    if args.refine_steps:
        kind += f", latents refined ({args.refine_steps} steps)"
    print(f"wrote {args.output}: {kind}, shape {out.shape}")
    return 0


def cmd_sweep(args) -> int:
    from .sweep import run_sweep

    return run_sweep(args.sweep_file, profile=args.profile, jobs=args.jobs, dry_run=args.dry_run,
                     use_notebook=not args.no_notebook, only=args.only)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bssvae",
        description="Unsupervised blind source separation with VAEs (Neri, Badeau, Depalle, EUSIPCO 2021).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train (or resume) one run, evaluate it, append its results row",
                       description="Train one run on the device, evaluate it on the fixed test set, write its "
                                   "run directory and append its rows to results/<profile>/<task>.csv. "
                                   "Re-running the same command resumes an interrupted run, or does nothing "
                                   "if the run has finished.")
    _add_run_options(p)
    p.add_argument("--restart", action="store_true",
                   help="train the run again from scratch: first deletes what its run directory holds (checkpoint, "
                        "and a finished run's weights, metrics and examples); refused, before deleting anything, "
                        "if the directory holds a run with other settings")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-results", action="store_true",
                   help="keep the run's rows in its directory only, out of results/<profile>/<task>.csv (a trial "
                        "that must not replace the profile's row of the same method, K and seed)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="re-evaluate a trained run on the test set",
                       description="Load RUN's weights and score them on the fixed test set.")
    p.add_argument("--run", type=Path, required=True, help="run directory written by `bssvae train`")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    p.add_argument("--write", action="store_true",
                   help="also rewrite metrics.json (rows, and how this evaluation ran), examples.npz and the "
                        "results rows (training time and device are kept from the run)")
    p.add_argument("--no-results", action="store_true",
                   help="with --write, rewrite the run directory only, not results/<profile>/<task>.csv (a trial "
                        "trained with --no-results, whose rows must not replace the profile's)")
    p.add_argument("--refine-steps", type=_steps, default=0, metavar="N",
                   help="VAE runs: also score 'vaem-refined', VAEM after N Adam steps fitting each test "
                        "mixture's latents to it, the decoder fixed (bssvae.refine; not in the paper; "
                        "100 is the tested setting; default: %(default)s, no refinement)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("separate", help="separate mixtures from a file with a trained model",
                       description="Separate MNIST-like mixtures. INPUT: a .npy of shape (B, 28, 28) or "
                                   "(28, 28) with float values in [0, 1] (a mixture of two digits is "
                                   "(a + b) / 2), or a 28 x 28 PNG (colour is converted to grayscale; "
                                   "transparent pixels are composited onto black, the background of MNIST's "
                                   "white digits; other sizes are rejected). OUTPUT: a .npy of shape "
                                   "(B, K, 28, 28), another file than INPUT.")
    p.add_argument("--run", type=Path, required=True, help="run directory of a trained vae or ae run")
    p.add_argument("input", type=Path, metavar="INPUT", help=".npy or .png mixtures")
    p.add_argument("output", type=Path, metavar="OUTPUT", help=".npy file to write")
    p.add_argument("--no-mask", action="store_true",
                   help="write the raw decoded sources instead of the VAEM (masked) estimates")
    p.add_argument("--refine-steps", type=_steps, default=0, metavar="N",
                   help="fit each mixture's latents to it with N Adam steps before decoding, the decoder "
                        "fixed (bssvae.refine; not in the paper; 100 is the tested setting; "
                        "default: %(default)s, the encoder's means as in the paper)")
    p.set_defaults(func=cmd_separate)

    p = sub.add_parser("sweep", help="run a sweep of trainings (K x methods x seeds) from a sweep file",
                       description="Run every (task, method, K, seed) of a sweep file through the papermill "
                                   "training notebook, skipping finished runs and resuming interrupted ones.")
    p.add_argument("sweep_file", type=Path, help="YAML sweep file (see sweeps/)")
    p.add_argument("--profile", default=None, help="override the sweep file's profile")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs in parallel (default: the sweep file's jobs for the device, cpu or cuda; "
                        "1 if it names none)")
    p.add_argument("--only", default=None, help="run only runs whose name contains this text")
    p.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done")
    p.add_argument("--no-notebook", action="store_true",
                   help="call bssvae.train directly instead of executing the notebook with papermill")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from . import openmp

        openmp.check()  # an unknown BSSVAE_OMP_WAIT, found when bssvae was imported
        return args.func(args)
    except BssvaeError as e:
        print(f"bssvae: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bssvae: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
