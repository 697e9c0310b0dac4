import pandas as pd

from bssvae.results import VECTOR_FLAGS, append_rows, atomic_write_text, cpu_vector_flags, provenance


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
