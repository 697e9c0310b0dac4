import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bssvae.cli import main
from bssvae.config import make_config
from bssvae.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    (root / "_toc.yml").write_text("")
    (root / "bssvae").mkdir()
    import os

    old = os.environ.get("BSSVAE_ROOT")
    os.environ["BSSVAE_ROOT"] = str(root)
    try:
        cfg = make_config("smoke", n_sources=3, epochs=1, max_train_images=1024, n_test=50)
        return train(cfg, root / "run", progress=False, write_results=False)["run_dir"]
    finally:
        if old is None:
            del os.environ["BSSVAE_ROOT"]
        else:
            os.environ["BSSVAE_ROOT"] = old


def test_separate_npy(run_dir, tmp_path):
    x = np.random.default_rng(0).random((5, 28, 28)).astype(np.float32) * 0.5
    np.save(tmp_path / "in.npy", x)
    assert main(["separate", "--run", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "out.npy")]) == 0
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (5, 3, 28, 28)
    np.testing.assert_allclose(out.sum(1), x, atol=1e-5)  # VAEM by default
    np.save(tmp_path / "one.npy", x[0])
    assert main(["separate", "--run", str(run_dir), "--no-mask", str(tmp_path / "one.npy"),
                 str(tmp_path / "o1.npy")]) == 0
    assert np.load(tmp_path / "o1.npy").shape == (1, 3, 28, 28)


def test_separate_png(run_dir, tmp_path):
    img = (np.random.default_rng(1).random((28, 28, 3)) * 255).astype(np.uint8)
    Image.fromarray(img, "RGB").save(tmp_path / "rgb.png")
    assert main(["separate", "--run", str(run_dir), str(tmp_path / "rgb.png"), str(tmp_path / "o.npy")]) == 0
    assert np.load(tmp_path / "o.npy").shape == (1, 3, 28, 28)


def _bad_inputs(tmp_path):
    cases = {}
    np.save(tmp_path / "shape.npy", np.zeros((2, 27, 28), np.float32)); cases["shape"] = ("shape.npy", "(B, 28, 28)")
    np.save(tmp_path / "ndim.npy", np.zeros((2, 2, 28, 28), np.float32)); cases["ndim"] = ("ndim.npy", "(B, 28, 28)")
    a = np.zeros((28, 28), np.float32); a[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", a); cases["nan"] = ("nan.npy", "finite")
    np.save(tmp_path / "neg.npy", -np.ones((28, 28), np.float32)); cases["neg"] = ("neg.npy", ">= 0")
    np.save(tmp_path / "big.npy", np.full((28, 28), 2.0, np.float32)); cases["big"] = ("big.npy", "<= 1")
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), np.float32)); cases["empty"] = ("empty.npy", "non-empty")
    np.save(tmp_path / "u8.npy", np.zeros((28, 28), np.uint8)); cases["u8"] = ("u8.npy", "uint8")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "big.png"); cases["png"] = ("big.png", "28 x 28")
    (tmp_path / "junk.npy").write_bytes(b"garbage"); cases["junk"] = ("junk.npy", "not a readable")
    (tmp_path / "x.txt").write_text("1"); cases["txt"] = ("x.txt", ".npy or .png")
    cases["missing"] = ("missing.npy", "does not exist")
    np.save(tmp_path / "complex.npy", np.zeros((28, 28), np.complex64)); cases["complex"] = ("complex.npy", "real values")
    noise = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    whole = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    cases["truncated png"] = ("cut.png", "not a readable PNG")
    (tmp_path / "dir.npy").mkdir(exist_ok=True); cases["directory"] = ("dir.npy", "is not a file")
    return cases


def test_bad_outputs_exit_nonzero_with_message(run_dir, tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros((28, 28), np.float32))
    (tmp_path / "taken.npy").mkdir()
    for out, expected in [(tmp_path / "no" / "such" / "o.npy", "does not exist"),
                          (tmp_path / "taken.npy", "is a directory")]:
        assert main(["separate", "--run", str(run_dir), str(tmp_path / "in.npy"), str(out)]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err, err
    assert not (tmp_path / "no").exists()


def test_bad_inputs_exit_nonzero_with_message(run_dir, tmp_path, capsys):
    for name, (fname, expected) in _bad_inputs(tmp_path).items():
        code = main(["separate", "--run", str(run_dir), str(tmp_path / fname), str(tmp_path / "o.npy")])
        err = capsys.readouterr().err
        assert code == 2, name
        assert expected in err and "Traceback" not in err, (name, err)


def test_bad_run_dir_and_options(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros((28, 28), np.float32))
    assert main(["separate", "--run", str(tmp_path / "nope"), str(tmp_path / "in.npy"), str(tmp_path / "o.npy")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--profile", "smoke", "-K", "0"]) == 2
    assert "n_sources" in capsys.readouterr().err
    assert main(["train", "--profile", "smoke", "--method", "magic"]) == 2
    assert "method" in capsys.readouterr().err
    assert main(["train", "--profile", "smoke", "--beta", "-0.5"]) == 2
    assert "beta" in capsys.readouterr().err


def test_run_options_override_the_profile():
    from bssvae.cli import _config_from, build_parser

    default = _config_from(build_parser().parse_args(["train", "--profile", "cpu", "--device", "cpu"]))
    args = build_parser().parse_args(["train", "--profile", "cpu", "--device", "cpu", "--beta", "0.25",
                                      "--lr", "0.003", "--epochs", "7", "--batch-size", "64"])
    config = _config_from(args)
    assert default.beta == 0.5 and config.beta == 0.25  # the paper's weight unless asked otherwise
    assert (config.lr, config.epochs, config.batch_size) == (0.003, 7, 64)
    assert config.lr_schedule == default.lr_schedule and config.precision == default.precision


def test_train_reloads_a_finished_run_in_its_precision_unless_restarted(tmp_path, monkeypatch, capsys):
    """`bssvae train` on a CPU where auto means fp32 returns the finished bf16 run of its run directory
    (as the book and sweeps reload it); --restart asks for this machine's recipe, refused with the way back."""
    import bssvae.train
    from bssvae.config import make_config
    from bssvae.train import claim_run_dir

    monkeypatch.setattr(bssvae.train, "cpu_prefers_bf16", lambda: False)
    claim_run_dir(make_config("cpu", device="cpu", precision="bf16"), tmp_path)
    row = {"method": "vaem", "psnr": 20.0}
    (tmp_path / "metrics.json").write_text(json.dumps({"rows": [row]}))
    argv = ["train", "--profile", "cpu", "--device", "cpu", "--run-dir", str(tmp_path), "--no-results", "--quiet"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == row
    assert main(argv + ["--restart"]) == 2
    assert "--precision bf16 asks for the stored one" in capsys.readouterr().err
    assert (tmp_path / "metrics.json").exists()  # refused before anything was deleted


def test_help_documents_every_option():
    import argparse

    from bssvae.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) >= {"train", "evaluate", "separate", "sweep"}
    for cmd, parser in subparsers.choices.items():
        for action in parser._actions:
            assert action.help and action.help.strip(), (cmd, action.dest)
        out = subprocess.run([sys.executable, "-m", "bssvae", cmd, "--help"], capture_output=True, text=True)
        assert out.returncode == 0
        assert "usage" in out.stdout
    out = subprocess.run([sys.executable, "-m", "bssvae", "train", "--profile", "bogus"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_reproduces_training_scores(run_dir, capsys):
    import json

    assert main(["evaluate", "--run", str(run_dir), "--device", "cpu"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    saved = json.loads((run_dir / "metrics.json").read_text())["rows"]
    assert [r["method"] for r in printed] == [r["method"] for r in saved]
    for p, s in zip(printed, saved):
        assert abs(p["psnr"] - s["psnr"]) < 1e-3
        # the training facts printed are the run's, not a NaN for the evaluation's own training time
        assert (p["train_seconds"], p["device"], p["epochs"]) == (round(s["train_seconds"], 4), s["device"], s["epochs"])


def test_separate_with_refined_latents(run_dir, tmp_path, capsys):
    x = np.random.default_rng(2).random((4, 28, 28)).astype(np.float32) * 0.5
    np.save(tmp_path / "in.npy", x)
    assert main(["separate", "--run", str(run_dir), "--refine-steps", "5", str(tmp_path / "in.npy"),
                 str(tmp_path / "out.npy")]) == 0
    assert "refined (5 steps)" in capsys.readouterr().out
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (4, 3, 28, 28)
    np.testing.assert_allclose(out.sum(1), x, atol=1e-5)
    with pytest.raises(SystemExit) as exit_:  # argparse rejects it, naming the option
        main(["separate", "--run", str(run_dir), "--refine-steps", "-1", str(tmp_path / "in.npy"),
              str(tmp_path / "o2.npy")])
    assert exit_.value.code == 2 and "--refine-steps" in capsys.readouterr().err
    assert not (tmp_path / "o2.npy").exists()


def test_evaluate_with_refinement_writes_a_row_and_its_provenance(project, capsys):
    import json

    cfg = make_config("smoke", epochs=1, max_train_images=1024, n_test=40)
    run = train(cfg, project / "run", progress=False, write_results=False)["run_dir"]
    assert main(["evaluate", "--run", str(run), "--device", "cpu", "--refine-steps", "3", "--write"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    methods = [r["method"] for r in metrics["rows"]]
    assert methods == ["vae", "vaem", "vaem-refined"]
    refined = metrics["rows"][2]
    assert refined["train_seconds"] == metrics["rows"][1]["train_seconds"]  # the training cost, kept
    assert metrics["evaluation"]["refinement"]["steps"] == 3 and "commit" in metrics["evaluation"]
    assert {"x", "s", "vae", "vaem", "vaem-refined"} <= set(np.load(run / "examples.npz").files)
    import pandas as pd

    table = pd.read_csv(project / "results" / "smoke" / "mnist.csv")
    assert set(table["method"]) == {"vae", "vaem", "vaem-refined"}
    # --no-results: a trial's directory is rewritten, the profile's table is not.
    trial = train(dataclasses.replace(cfg, seed=1), project / "trial", progress=False, write_results=False)["run_dir"]
    before = (project / "results" / "smoke" / "mnist.csv").read_bytes()
    assert main(["evaluate", "--run", str(trial), "--device", "cpu", "--refine-steps", "2", "--write",
                 "--no-results"]) == 0
    assert (project / "results" / "smoke" / "mnist.csv").read_bytes() == before
    assert [r["method"] for r in json.loads((trial / "metrics.json").read_text())["rows"]][-1] == "vaem-refined"
    # The AE has no rows for it: refused with a message, not a traceback.
    ae_cfg = make_config("smoke", method="ae", epochs=1, max_train_images=512, n_test=20)
    ae_run = train(ae_cfg, project / "ae", progress=False, write_results=False)["run_dir"]
    capsys.readouterr()
    assert main(["evaluate", "--run", str(ae_run), "--device", "cpu", "--refine-steps", "3"]) == 2
    assert "VAE runs" in capsys.readouterr().err


def test_train_with_a_time_budget_and_its_epochs_survive_a_re_evaluation(project, capsys):
    """``--minutes`` ends the run at the budget; the epochs it trained stay in its rows when ``evaluate
    --write`` rewrites them (the config's epochs are only the cap)."""
    import json

    run = project / "budgeted"
    assert main(["train", "--profile", "smoke", "--minutes", "0.03", "--epochs", "100000", "--run-dir", str(run),
                 "--quiet", "--no-results"]) == 0
    assert not (project / "results" / "smoke" / "mnist.csv").exists()  # --no-results: a trial, kept out of the table
    rows = json.loads((run / "metrics.json").read_text())["rows"]
    trained = rows[0]["epochs"]
    assert 0 < trained < 100000 and all(r["epochs"] == trained for r in rows)
    assert json.loads((run / "config.json").read_text())["config"]["budget_minutes"] == 0.03
    assert main(["evaluate", "--run", str(run), "--device", "cpu", "--refine-steps", "2", "--write"]) == 0
    rows = json.loads((run / "metrics.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["vae", "vaem", "vaem-refined"]
    assert all(r["epochs"] == trained for r in rows)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # argparse refuses it, naming the option
        main(["train", "--profile", "smoke", "--minutes", "0", "--run-dir", str(project / "none")])
    assert exit_.value.code == 2
    assert "argument --minutes: expected a positive number of minutes, got '0'" in capsys.readouterr().err
    assert not (project / "none").exists()


def test_readme_bssvae_commands_parse():
    """Every ``bssvae`` command in the README's code blocks parses with the command line's own parser, and each
    ``train`` command makes a valid config: the README cannot name an option or a value that the command refuses."""
    import re
    import shlex

    from bssvae.cli import _config_from, build_parser

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].endswith("bin/bssvae"):
                commands.append(words[1:])
    assert sum(c[0] == "train" for c in commands) >= 3 and {"evaluate", "separate", "sweep"} <= {c[0] for c in commands}
    parser = build_parser()
    for argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README: `bssvae {shlex.join(argv)}` does not parse")
        if argv[0] == "train":
            _config_from(args)


def _copy_run(run_dir, tmp_path):
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def test_separate_refuses_damaged_weights(run_dir, tmp_path, capsys, flip_tensor_bytes):
    run = _copy_run(run_dir, tmp_path)
    flip_tensor_bytes(run / "model.safetensors")
    np.save(tmp_path / "in.npy", np.zeros((28, 28), np.float32))
    assert main(["separate", "--run", str(run), str(tmp_path / "in.npy"), str(tmp_path / "o.npy")]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors: weights are corrupt" in err and "Traceback" not in err, err
    assert not (tmp_path / "o.npy").exists()


def test_evaluate_names_an_unreadable_metrics_file_and_write_rewrites_it(run_dir, tmp_path, capsys):
    run = _copy_run(run_dir, tmp_path)
    saved = json.loads((run / "metrics.json").read_text())["rows"]
    for text in ("{not json", '{"rows": 3}', '{"rows": [1, 2]}', "[]"):
        (run / "metrics.json").write_text(text)
        assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert "metrics.json: unreadable" in err and f"bssvae evaluate --run {run} --write" in err, err
        assert "Traceback" not in err
    # --write scores the weights again and writes metrics.json anew, the training facts from provenance.json
    assert main(["evaluate", "--run", str(run), "--device", "cpu", "--write", "--no-results"]) == 0
    rows = json.loads((run / "metrics.json").read_text())["rows"]
    assert [r["method"] for r in rows] == [r["method"] for r in saved]
    for new, old in zip(rows, saved):
        assert (new["train_seconds"], new["device"], new["epochs"]) == (old["train_seconds"], old["device"],
                                                                        old["epochs"])
        assert new["psnr"] == pytest.approx(old["psnr"], abs=1e-3)
    capsys.readouterr()
    assert main(["train", "--profile", "smoke", "-K", "3", "--epochs", "1", "--run-dir", str(run), "--quiet",
                 "--no-results", "--device", "cpu"]) == 2  # other settings: still refused, not retrained
    assert "another configuration" in capsys.readouterr().err


def test_unusable_output_locations_are_named(run_dir, tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "in.npy", np.zeros((2, 28, 28), np.float32))
    before = (tmp_path / "in.npy").read_bytes()
    assert main(["separate", "--run", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "in.npy")]) == 2
    assert "is INPUT" in capsys.readouterr().err
    assert (tmp_path / "in.npy").read_bytes() == before

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("bssvae.results.atomic_write_bytes", refuse)  # the test runs as root: chmod would not do
    assert main(["separate", "--run", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "o.npy")]) == 2
    err = capsys.readouterr().err
    assert f"OUTPUT: cannot write {tmp_path / 'o.npy'}: Permission denied" in err and "Traceback" not in err, err
    monkeypatch.undo()
    monkeypatch.setattr("os.access", lambda path, mode: False)
    assert main(["separate", "--run", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "o.npy")]) == 2
    assert f"no permission to write in {tmp_path}" in capsys.readouterr().err
    monkeypatch.undo()
    (tmp_path / "afile").write_text("x")
    assert main(["train", "--profile", "smoke", "--run-dir", str(tmp_path / "afile"), "--quiet", "--no-results"]) == 2
    err = capsys.readouterr().err
    assert "afile is a file, not a directory" in err and "Traceback" not in err, err


def test_inputs_that_numpy_reads_differently_are_read_or_named(run_dir, tmp_path, capsys):
    from bssvae.cli import read_mixtures

    x = np.random.default_rng(3).random((2, 28, 28)).astype(np.float32) * 0.5
    np.save(tmp_path / "big-endian.npy", x.astype(">f4"))
    np.testing.assert_array_equal(read_mixtures(tmp_path / "big-endian.npy"), x)
    assert main(["separate", "--run", str(run_dir), str(tmp_path / "big-endian.npy"), str(tmp_path / "o.npy")]) == 0
    np.savez(tmp_path / "archive.npz", x=x)
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    np.save(tmp_path / "flat.npy", np.zeros((5, 784), np.float32))
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "big.png")
    for name, expected in (("archive.npy", "archive.npy is an .npz archive, not a .npy array"),
                           ("flat.npy", "expected shape (B, 28, 28) or (28, 28), got (5, 784)"),
                           ("big.png", "INPUT: expected a 28 x 28 PNG, got 32 x 32")):
        assert main(["separate", "--run", str(run_dir), str(tmp_path / name), str(tmp_path / "o.npy")]) == 2
        err = capsys.readouterr().err
        assert expected in err and "not a readable" not in err and "Traceback" not in err, (name, err)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_a_transparent_png_is_composited_onto_black(tmp_path, mode):
    """A grey digit drawn on a transparent ground (a common way to save one) is grey ink on black, as in
    MNIST: ink times its opacity. Dropping the alpha would make every pixel grey; reading the alpha alone as the
    image would make the ink white."""
    from bssvae.cli import read_mixtures

    alpha = np.zeros((28, 28), np.uint8)
    alpha[8:20, 12:16] = 255
    alpha[8:20, 16] = 51  # an anti-aliased edge: 20 % opaque
    ink = np.full((28, 28), 128, np.uint8)
    channels = [ink, ink, ink, alpha] if mode == "RGBA" else [ink, alpha]
    Image.fromarray(np.stack(channels, -1), mode).save(tmp_path / "digit.png")
    np.testing.assert_allclose(read_mixtures(tmp_path / "digit.png")[0], (128 / 255) * alpha / 255.0, atol=1 / 255)


def test_separate_says_an_audio_run_is_one_before_looking_for_its_weights(tmp_path, capsys):
    from bssvae.train import claim_run_dir

    claim_run_dir(make_config("smoke", task="audio"), tmp_path / "audio")  # config.json, no weights
    np.save(tmp_path / "in.npy", np.zeros((28, 28), np.float32))
    assert main(["separate", "--run", str(tmp_path / "audio"), str(tmp_path / "in.npy"), str(tmp_path / "o.npy")]) == 2
    assert "is a 'audio' run; `separate` takes MNIST-like images" in capsys.readouterr().err


def test_train_refuses_values_that_are_not_finite_before_claiming_a_directory(tmp_path, capsys):
    for option, expected in (("--lr", "a finite, positive learning rate"), ("--beta", "a finite non-negative number")):
        run = tmp_path / option.strip("-")
        assert main(["train", "--profile", "smoke", option, "inf", "--run-dir", str(run), "--quiet",
                     "--no-results"]) == 2
        err = capsys.readouterr().err
        assert f"{option.strip('-')}: expected {expected}, got inf" in err, err
        assert not run.exists()


def test_restart_help_says_what_it_deletes():
    from bssvae.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "deletes" in help_text and "finished run's weights, metrics" in " ".join(help_text.split())
