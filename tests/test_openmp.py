"""bssvae.openmp: the waiting policy chosen at import from the cores' load, and its record."""
import json
import os
import subprocess
import sys

import pytest

from bssvae import openmp
from bssvae.errors import BssvaeError

STAT_BEFORE = """cpu  300 0 100 1000 0 0 0 0 0 0
cpu0 100 0 50 500 0 0 0 0 0 0
cpu1 200 0 50 500 0 0 0 0 0 0
intr 12345
"""
# over the sample: cpu0 busy 20 of 20 ticks (15 user, 3 system, 2 steal), cpu1 busy 5 of 20 (15 idle + iowait)
STAT_AFTER = """cpu  320 0 103 1015 0 0 0 2 0 0
cpu0 115 0 53 500 0 0 0 2 0 0
cpu1 205 0 50 510 5 0 0 0 0 0
intr 12399
"""


def never(*_args, **_kwargs):
    raise AssertionError("the cores were looked at where nothing depended on them")


def decide(env, busy=None, torch_imported=False, cpus=(0, 1), monkeypatch=None):
    if monkeypatch is not None:
        monkeypatch.setattr(openmp, "_cpu_ids", lambda: set(cpus))
    sampler = never if busy is None else (lambda: busy)
    return openmp.decide(env, torch_imported=torch_imported, sampler=sampler)


def test_busy_cores_counts_each_cpus_busy_share_of_its_ticks(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(STAT_BEFORE)
    monkeypatch.setattr(openmp.time, "sleep", lambda s: stat.write_text(STAT_AFTER))
    assert openmp.busy_cores(0.2, cpus={0, 1}, path=str(stat)) == pytest.approx(1.25)
    stat.write_text(STAT_BEFORE)
    assert openmp.busy_cores(0.2, cpus={1}, path=str(stat)) == pytest.approx(0.25)  # only the CPUs we may use
    assert openmp.busy_cores(0.2, path=str(tmp_path / "missing")) is None


def test_auto_spins_on_idle_cores_and_waits_passively_beside_busy_ones(monkeypatch):
    env = {}
    d = decide(env, busy=0.3, monkeypatch=monkeypatch)
    assert (d["wait"], d["mode"], d["busy_cores"], d["cpus"], d["threads"]) == ("spin", "auto", 0.3, 2, 2)
    assert "OMP_WAIT_POLICY" not in env and "leaving the 2 cores our threads need idle" in d["reason"]
    env = {}
    d = decide(env, busy=0.6, monkeypatch=monkeypatch)
    assert d["wait"] == "passive" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert d["reason"] == "0.60 of 2 cores were busy over 0.2 s, so our 2 threads would share cores with other work"


def test_auto_counts_only_the_cores_our_threads_need(monkeypatch):
    """On 4 cores with 2 threads, 2 busy cores leave ours idle; a third does not."""
    for busy, wait in ((2.5, "spin"), (2.6, "passive")):
        env = {"BSSVAE_THREADS": "2"}
        assert decide(env, busy=busy, cpus=range(4), monkeypatch=monkeypatch)["wait"] == wait


def test_one_thread_is_not_looked_at_and_waits_passively(monkeypatch):
    env = {"BSSVAE_THREADS": "1"}
    d = decide(env, monkeypatch=monkeypatch)
    assert d["wait"] == "passive" and d["reason"] == "one thread has no other thread to wait for"
    assert decide({}, cpus=(0,), monkeypatch=monkeypatch)["wait"] == "passive"  # a one-core machine


def test_an_unreadable_load_waits_passively(monkeypatch):
    env = {}
    monkeypatch.setattr(openmp, "_cpu_ids", lambda: {0, 1})
    d = openmp.decide(env, torch_imported=False, sampler=lambda: None)
    assert d["wait"] == "passive" and d["busy_cores"] is None and env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_explicit_modes_openmps_own_variables_and_a_late_import_win_over_the_load():
    env = {"BSSVAE_OMP_WAIT": "passive"}
    assert decide(env)["wait"] == "passive" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    env = {"BSSVAE_OMP_WAIT": " Spin "}
    assert decide(env)["wait"] == "spin" and "OMP_WAIT_POLICY" not in env
    for preset in ({"GOMP_SPINCOUNT": "10000"}, {"OMP_WAIT_POLICY": "active"}, {"KMP_BLOCKTIME": "0"}):
        env = dict(preset)
        d = decide(env)
        assert (d["wait"], d["environment"], env) == ("environment", preset, preset)
    env = {}
    d = decide(env, torch_imported=True)
    assert d["wait"] == "torch imported first" and env == {}


def test_an_unknown_mode_is_recorded_at_import_and_raised_by_training(monkeypatch):
    env = {"BSSVAE_OMP_WAIT": "fast"}
    d = decide(env)
    assert d["wait"] == "passive" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert d["error"] == "BSSVAE_OMP_WAIT: expected one of auto, passive, spin, got 'fast'"
    monkeypatch.setattr(openmp, "DECISION", d)
    with pytest.raises(BssvaeError, match="^BSSVAE_OMP_WAIT: expected one of auto, passive, spin, got 'fast'$"):
        from bssvae.train import configure_threads

        configure_threads()


def _child(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in openmp.OPENMP_VARIABLES + (openmp.ENV,)}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True)


def test_importing_bssvae_before_torch_sets_the_policy_and_provenance_records_it():
    code = ("import json, os, bssvae; from bssvae.results import hardware; "
            "print(json.dumps([os.environ.get('OMP_WAIT_POLICY'), hardware()['openmp']]))")
    for mode, policy in (("passive", "PASSIVE"), ("spin", None)):
        out = _child(code, BSSVAE_OMP_WAIT=mode)
        assert out.returncode == 0, out.stderr
        seen, record = json.loads(out.stdout)
        assert seen == policy and record["wait"] == mode and record["mode"] == mode
        assert record["variables"] == ({"OMP_WAIT_POLICY": "PASSIVE"} if policy else {})
    out = _child("import torch, bssvae, json; print(json.dumps(bssvae.openmp.DECISION))")
    assert json.loads(out.stdout)["wait"] == "torch imported first"


def test_the_command_line_names_an_unknown_mode_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bssvae", "separate", "--run", str(tmp_path / "run"),
                          str(tmp_path / "in.npy"), str(tmp_path / "out.npy")], capture_output=True, text=True,
                         env={**{k: v for k, v in os.environ.items() if k not in openmp.OPENMP_VARIABLES},
                              "BSSVAE_OMP_WAIT": "fast"})
    assert out.returncode == 2
    assert out.stderr == "bssvae: error: BSSVAE_OMP_WAIT: expected one of auto, passive, spin, got 'fast'\n"
