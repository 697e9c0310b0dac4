import pandas as pd

from bssvae.results import (VECTOR_FLAGS, append_rows, atomic_write_text, cpu_vector_flags, git_commit, provenance,
                            rows_without)


def _row(method, seed, psnr):
    return {"method": method, "n_sources": 2, "n_digits": 2, "seed": seed, "epochs": 1, "psnr": psnr,
            "ssim": 0.5, "psnr_halved": psnr + 6, "ssim_halved": 0.5, "train_seconds": 1.0, "device": "cpu",
            "run_dir": "x"}


def test_append_replaces_same_key(tmp_path):
    csv = tmp_path / "t.csv"
    append_rows(csv, [_row("vae", 0, 10.0), _row("vaem", 0, 11.0)])
    append_rows(csv, [_row("vae", 0, 12.0), _row("vae", 1, 13.0)])
    df = pd.read_csv(csv)
    assert len(df) == 3
    assert df.set_index(["method", "seed"]).loc[("vae", 0), "psnr"] == 12.0


def test_atomic_write_leaves_no_partial(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two" and [f.name for f in tmp_path.iterdir()] == ["a.txt"]


def test_provenance_fields():
    p = provenance("cpu", seed=3)
    assert p["seed"] == 3 and "torch" in p["versions"] and p["hardware"]["device"] == "cpu"


def test_read_run_rows(tmp_path):
    from bssvae.results import atomic_write_json, read_run_rows

    assert read_run_rows(tmp_path) is None  # no metrics.json: not finished
    (tmp_path / "metrics.json").write_text("{not json")
    assert read_run_rows(tmp_path) is None
    atomic_write_json(tmp_path / "metrics.json", {"rows": [{"method": "vaem", "psnr": 19.0}], "eval_seconds": 1.0})
    assert read_run_rows(tmp_path) == [{"method": "vaem", "psnr": 19.0}]


def test_hardware_names_the_vector_instructions(tmp_path):
    """Provenance says which vector ISA the CPU has: fp32 vs bf16 speed depends on it (AVX2 vs AMX)."""
    hw = provenance("cpu")["hardware"]
    assert isinstance(hw["cpu_capability"], str) and hw["cpu_capability"]
    assert set(hw["cpu_flags"]) <= set(VECTOR_FLAGS)
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 fma avx2 avx512f amx_tile amx_bf16 avx512_bf16x\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_vector_flags(info) == ["fma", "avx2", "avx512f", "amx_tile", "amx_bf16"]  # first CPU's; exact names
    assert cpu_vector_flags(tmp_path / "absent") == []


def test_rows_without_finds_runs_lacking_a_method():
    import pytest

    t = pd.DataFrame([
        {"profile": "paper", "method": "vaem", "n_sources": 2, "n_digits": 2, "seed": 0, "psnr": 20.3},
        {"profile": "paper", "method": "vaem-refined", "n_sources": 2, "n_digits": 2, "seed": 0, "psnr": 21.7},
        {"profile": "paper", "method": "vaem", "n_sources": 2, "n_digits": 2, "seed": 1, "psnr": 12.8},
        {"profile": "cpu", "method": "vaem", "n_sources": 2, "n_digits": 2, "seed": 0, "psnr": 19.3},
        {"profile": "paper", "method": "vae", "n_sources": 3, "n_digits": 2, "seed": 0, "psnr": 15.0},
    ], index=[10, 11, 12, 13, 14])  # an index unlike the key: matching must use the key columns
    gone = rows_without(t, "vaem", "vaem-refined", key=("profile", "n_sources", "n_digits", "seed"))
    assert list(zip(gone["profile"], gone["seed"])) == [("paper", 1), ("cpu", 0)]
    # without the profile in the key, the cpu seed-0 run counts as refined by the paper's row
    assert list(rows_without(t, "vaem", "vaem-refined")["seed"]) == [1]
    assert rows_without(t, "vaem-refined", "vaem").empty
    assert len(rows_without(t, "vaem", "absent")) == 3
    with pytest.raises(ValueError, match="profile"):
        rows_without(t.drop(columns="profile"), "vaem", "vaem-refined", key=("profile", "seed"))


def test_git_commit_is_dirty_for_code_changes_not_for_results(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.delenv("BSSVAE_COMMIT", raising=False)

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "results" / "mnist.csv").write_text("method\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    clean = git_commit(tmp_path)
    assert len(clean) == 40
    (tmp_path / "results" / "mnist.csv").write_text("method\nvaem\n")  # a run appended its row
    assert git_commit(tmp_path) == clean
    (tmp_path / "results" / "exp.py").write_text("b = 1\n")  # an ablation script: code, though under results/
    git("add", "results/exp.py")
    assert git_commit(tmp_path) == clean + "-dirty"
    git("reset", "-q", "results/exp.py")
    (tmp_path / "code.py").write_text("a = 2\n")
    assert git_commit(tmp_path) == clean + "-dirty"
