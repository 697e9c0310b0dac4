import pytest

from bssvae.errors import BssvaeError
from bssvae.sweep import load_sweep, run_sweep


def test_committed_sweeps_parse():
    runs, jobs = load_sweep("sweeps/mnist.yaml")
    assert len(runs) == 4 * 3 * 3 + 3 + 2 and jobs["cpu"] >= 1
    assert {r.n_sources for r in runs} == {2, 3, 4}


@pytest.mark.parametrize("text, match", [
    ("profile: smoke\ngrid: []\n", "non-empty"),
    ("profile: smoke\ngird: []\n", "unknown keys"),
    ("profile: nope\ngrid: [{task: mnist}]\n", "profile"),
    ("profile: smoke\ngrid: [{methods: [vae], n_sources: [0]}]\n", "n_sources"),
    ("profile: smoke\ngrid: [{methods: [wizard]}]\n", "method"),
    ("profile: smoke\ngrid: [{method: vae}]\n", "unknown keys"),
    ("[1, 2\n", "YAML"),
    ("profile: smoke\ngrid: [{methods: [vae], overrides: {seed: 3}}]\n", r"overrides sets \['seed'\]"),
    ("profile: smoke\ngrid: [{methods: [vae], overrides: {model: {latent: 3}}}]\n", r"model: unknown keys \['latent'\]"),
    ("profile: smoke\ngrid: [{seeds: [0]}, {seeds: [0], overrides: {epochs: 3}}]\n", "again with other overrides"),
])
def test_bad_sweep_files(tmp_path, text, match):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(BssvaeError, match=match):
        load_sweep(p)


def test_sweep_runs_skips_and_never_duplicates(project, tmp_path, capsys):
    import pandas as pd

    p = tmp_path / "s.yaml"
    p.write_text("profile: smoke\njobs: {cpu: 2}\ngrid:\n  - methods: [vae]\n    n_sources: [2]\n    seeds: [0]\n"
                 "    overrides: {epochs: 1, max_train_images: 1024, n_test: 50}\n")
    assert run_sweep(p, use_notebook=False) == 0
    assert run_sweep(p, use_notebook=False) == 0
    assert "1 already trained" in capsys.readouterr().out
    df = pd.read_csv(project / "results" / "smoke" / "mnist.csv")
    assert len(df) == 2  # vae and vaem, once each


@pytest.mark.parametrize("first_error, calls, status", [
    ("RuntimeError: Kernel died before replying to kernel_info", 2, "ok"),  # port race: retried
    ("ValueError: a cell failed", 1, "failed"),  # a real failure: reported at once
])
def test_sweep_retries_only_a_kernel_that_never_started(project, monkeypatch, first_error, calls, status):
    import subprocess

    from bssvae import sweep

    run = load_sweep("sweeps/smoke.yaml")[0][0]
    seen = []

    def fake_run(cmd, env, stdout, stderr):
        seen.append(cmd)
        if len(seen) == 1:
            stdout.write(f"Traceback (most recent call last):\n{first_error}\n")
            return subprocess.CompletedProcess(cmd, 1)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(sweep, "_run_child", fake_run)
    monkeypatch.setattr(sweep.time, "sleep", lambda s: None)
    got, _, tail = sweep._execute(run, False, 1, "cpu")
    assert (got, len(seen)) == (status, calls)
    assert (first_error in tail) == (status == "failed")


def test_sweep_gives_up_on_a_kernel_that_never_starts(project, monkeypatch):
    import subprocess

    from bssvae import sweep

    run = load_sweep("sweeps/smoke.yaml")[0][0]
    seen = []

    def fake_run(cmd, env, stdout, stderr):
        seen.append(cmd)
        stdout.write("RuntimeError: Kernel died before replying to kernel_info\n")
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(sweep, "_run_child", fake_run)
    monkeypatch.setattr(sweep.time, "sleep", lambda s: None)
    got, _, tail = sweep._execute(run, False, 1, "cpu")
    assert got == "failed" and len(seen) == 1 + sweep.KERNEL_START_RETRIES and "kernel_info" in tail


def test_a_successful_rerun_removes_the_failed_notebook(project, monkeypatch):
    """The kept copy of a failed notebook is for debugging; once the run succeeds it is stale."""
    import subprocess

    from bssvae import sweep
    from bssvae.results import results_dir

    run = load_sweep("sweeps/smoke.yaml")[0][0]
    outcomes = iter([1, 0])

    def fake_run(cmd, env, stdout, stderr):
        tmp = results_dir(run.profile) / "notebooks" / f".{run.name}.running.ipynb"
        tmp.write_text("{}")
        stdout.write("ValueError: a cell failed\n")
        return subprocess.CompletedProcess(cmd, next(outcomes))

    monkeypatch.setattr(sweep, "_run_child", fake_run)
    failed = results_dir(run.profile) / "notebooks" / f"{run.name}.failed.ipynb"
    assert sweep._execute(run, True, 1, "cpu")[0] == "failed" and failed.exists()
    assert sweep._execute(run, True, 1, "cpu")[0] == "ok"
    assert not failed.exists() and (failed.parent / f"{run.name}.ipynb").exists()


def test_a_finished_run_with_other_settings_is_not_skipped_silently(project):
    p = project / "s.yaml"
    base = "profile: smoke\ngrid:\n  - seeds: [0]\n    overrides: {epochs: 1, max_train_images: 1024, n_test: 50"
    p.write_text(base + "}\n")
    assert run_sweep(p, use_notebook=False) == 0
    p.write_text(base + ", lr: 0.002}\n")
    with pytest.raises(BssvaeError, match=r"mnist-vae-K2-M2-seed0 \(differs in \['lr'\]\)"):
        run_sweep(p, use_notebook=False)


def test_a_finished_baseline_run_with_other_method_settings_is_not_skipped_silently(project, monkeypatch):
    """A baseline's own settings (NMF's iterations here) changed since the run finished: refused, named."""
    from bssvae import baselines

    p = project / "s.yaml"
    p.write_text("profile: smoke\ngrid:\n  - methods: [nmf]\n    seeds: [0]\n"
                 "    overrides: {max_train_images: 1024, n_test: 50}\n")
    assert run_sweep(p, use_notebook=False) == 0
    assert run_sweep(p, use_notebook=False) == 0  # finished, same settings: skipped
    monkeypatch.setitem(baselines.METHOD_SETTINGS["nmf"], "smoke", dict(n_fit=1000, max_iter=150))
    with pytest.raises(BssvaeError, match=r"mnist-nmf-K2-M2-seed0 \(differs in \['max_iter'\]\)"):
        run_sweep(p, use_notebook=False)


def test_an_interrupted_sweep_starts_no_queued_run(project, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) in the first run: the queued runs are cancelled, not trained."""
    from bssvae import sweep

    p = project / "s.yaml"
    p.write_text("profile: smoke\ngrid: [{seeds: [0, 1, 2, 3]}]\n")
    started = []

    def interrupted(run, *args):
        started.append(run.name)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "_execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(p, jobs=1, use_notebook=False)
    assert len(started) == 1


def test_only_that_matches_nothing_is_an_error(project):
    p = project / "s.yaml"
    p.write_text("profile: smoke\ngrid: [{seeds: [0]}]\n")
    with pytest.raises(BssvaeError, match="--only: no run"):
        run_sweep(p, use_notebook=False, only="seed7", dry_run=True)


def test_a_finished_run_of_the_other_precision_recipe_names_the_way_to_it(project):
    """The committed cpu runs are the bf16 recipe's; a sweep asking for the fp32 recipe says how to reach them."""
    import json

    from bssvae.config import make_config
    from bssvae.results import results_dir
    from bssvae.train import claim_run_dir

    run_dir = results_dir("cpu") / "runs" / "mnist-vae-K2-M2-seed0"
    claim_run_dir(make_config("cpu", device="cpu", precision="bf16"), run_dir)
    (run_dir / "metrics.json").write_text(json.dumps({"rows": []}))  # finished
    p = project / "s.yaml"
    p.write_text("profile: cpu\ngrid:\n  - seeds: [0]\n    overrides: {precision: fp32, device: cpu}\n")
    with pytest.raises(BssvaeError, match=r"mnist-vae-K2-M2-seed0 \(differs in \['batch_size', 'epochs', 'lr', "
                                          r"'optimizer', 'precision'\]; the cpu profile's .* --precision bf16 asks for "
                                          r"the stored"):
        run_sweep(p, use_notebook=False)


def test_sweep_files_that_cannot_be_read_are_named(tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b"profile: smoke\n\xff\xfe\x00\x81\n")
    with pytest.raises(BssvaeError, match=r"binary.yaml: not UTF-8 text"):
        load_sweep(tmp_path / "binary.yaml")
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(BssvaeError, match=r"folder.yaml is not a file"):
        load_sweep(tmp_path / "folder.yaml")


def test_a_bad_value_in_a_grid_names_the_file_and_the_block(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("profile: smoke\ngrid:\n  - seeds: [0]\n  - n_sources: [2, 0]\n")
    with pytest.raises(BssvaeError, match=r"^sweep file .*s.yaml: grid\[1\]: n_sources: expected an integer >= 1"):
        load_sweep(p)


def test_a_notebook_sweep_away_from_the_repository_says_where_the_notebook_is_looked_for(project, capsys):
    """The project fixture's root has no book/: every run would fail in papermill."""
    p = project / "s.yaml"
    p.write_text("profile: smoke\ngrid: [{seeds: [0]}]\n")
    with pytest.raises(BssvaeError, match=r"the training notebook .*train.ipynb is not there .*set BSSVAE_ROOT.*"
                                          r"--no-notebook"):
        run_sweep(p)
    assert run_sweep(p, dry_run=True) == 0  # listing needs no notebook
    assert not (project / "results" / "smoke" / "notebooks").exists()
