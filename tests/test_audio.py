"""Tests of bssvae.audio: notes, split, spectrograms, NSynth, mixtures, evaluation, and a smoke run."""
from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bssvae.audio import (CLAMP_DB, INSTRUMENTS, NSYNTH_FAMILIES, SPECTROGRAMS, AudioTask, NoteBank, bss_eval,
                          download_nsynth, draw_mixtures, magnitude, nsynth_notes, prepare_waveform, read_nsynth,
                          render_notes, separate_waveform, soundfont_notes, spectrogram_spec,
                          waveforms_from_magnitudes)
from bssvae.audio.task import FIGURE3_PAIR
from bssvae.config import ModelConfig, make_config
from bssvae.errors import BssvaeError, DataError
from bssvae.masks import ideal_binary_mask, ideal_ratio_mask
from bssvae.model import VAEBSS

FIXTURE = Path(__file__).parent / "fixtures" / "nsynth_tiny"
SMOKE = SPECTROGRAMS[1024]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A private cache directory for the module (rendering the smoke bank takes about a second)."""
    path = tmp_path_factory.mktemp("bssvae-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BSSVAE_DATA", str(path))
        mp.setenv("BSSVAE_OFFLINE", "1")
        yield path


@pytest.fixture(scope="module")
def smoke_bank(data_dir):
    return soundfont_notes(SMOKE.sample_rate, SMOKE.n_samples)


@pytest.fixture(scope="module")
def task(data_dir, smoke_bank):
    config = make_config("smoke", "audio", n_test=40)
    return AudioTask.build(config, "cpu")


def _si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    a = est @ ref / (ref @ ref)
    return float(10 * np.log10(np.sum((a * ref) ** 2) / np.sum((a * ref - est) ** 2)))


# ---------------------------------------------------------------------------- notes and split


def test_rendered_notes_are_audible_and_at_the_right_pitch(data_dir):
    spec = SPECTROGRAMS[32768]
    bank = render_notes(spec.sample_rate, spec.n_samples, instruments=("bassoon", "violin", "flute"),
                        pitch_stride=12)
    assert set(bank.instrument_names) == {"bassoon", "violin", "flute"}
    assert all(c > 0 for c in bank.counts().values())
    assert bank.waveforms.shape[1] == spec.n_samples
    np.testing.assert_allclose(np.abs(bank.waveforms).max(axis=1), 1.0, rtol=1e-6)
    rms = np.sqrt((bank.waveforms ** 2).mean(axis=1))
    assert (rms > 0.05).all()  # sustained notes, not clicks
    for wave, pitch in zip(bank.waveforms, bank.pitch):
        spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
        peak_hz = np.argmax(spectrum) * spec.sample_rate / len(wave)
        harmonic = peak_hz / (440.0 * 2 ** ((pitch - 69) / 12))
        assert abs(harmonic - round(harmonic)) < 0.05 and round(harmonic) >= 1, (pitch, peak_hz)


def test_default_bank_has_every_instrument_and_is_cached(data_dir, smoke_bank):
    assert set(smoke_bank.instrument_names) == set(INSTRUMENTS)
    for name, count in smoke_bank.counts().items():
        inst = INSTRUMENTS[name]
        assert count == len(inst.pitches), name  # every pitch of the range is playable
    files = list((data_dir / "audio").glob("soundfont-*.npz"))
    assert len(files) == 1
    again = soundfont_notes(SMOKE.sample_rate, SMOKE.n_samples)
    np.testing.assert_array_equal(again.waveforms, smoke_bank.waveforms)
    assert again.meta["params"]["soundfont_sha256"] == smoke_bank.meta["params"]["soundfont_sha256"]


def test_corrupt_cache_is_rendered_again(data_dir, smoke_bank, tmp_path, monkeypatch):
    monkeypatch.setenv("BSSVAE_DATA", str(tmp_path))
    bank = soundfont_notes(SMOKE.sample_rate, SMOKE.n_samples, instruments=("oboe",))
    path = next((tmp_path / "audio").glob("soundfont-*.npz"))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError):
        NoteBank.load(path)
    again = soundfont_notes(SMOKE.sample_rate, SMOKE.n_samples, instruments=("oboe",))
    np.testing.assert_array_equal(again.waveforms, bank.waveforms)
    NoteBank.load(path)  # rewritten whole


def test_split_holds_out_pitches(smoke_bank):
    train, test = smoke_bank.split()
    assert len(train) + len(test) == len(smoke_bank)
    assert not set(train.pitch) & set(test.pitch)
    assert (test.pitch % 4 == 0).all() and (train.pitch % 4 != 0).all()
    assert set(np.unique(test.instrument)) == set(np.unique(train.instrument)) == set(range(9))
    sub = train.balanced_subset(18)
    assert len(sub) == 18 and set(sub.counts().values()) == {2}


def test_note_bank_validates_and_round_trips(tmp_path, smoke_bank):
    with pytest.raises(BssvaeError, match="pitch"):
        NoteBank(np.zeros((2, 10)), [0, 0], [60], [100, 100], ("a",), 8000, "x")
    small = smoke_bank.select(np.arange(5))
    small.save(tmp_path / "b.npz")
    back = NoteBank.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(back.waveforms, small.waveforms)
    assert back.instrument_names == small.instrument_names and back.source == small.source


# ---------------------------------------------------------------------------- spectrograms


@pytest.mark.parametrize("input_dim", sorted(SPECTROGRAMS))
def test_spectrogram_shape_is_the_input_size(input_dim):
    spec = spectrogram_spec(input_dim)
    assert spec.n_bins * spec.n_frames == input_dim
    x = torch.randn(3, spec.n_samples)
    assert magnitude(x, spec).shape == (3, input_dim)


def test_paper_geometry_is_documented_choice():
    spec = spectrogram_spec(32768)
    assert (spec.sample_rate, spec.n_fft, spec.hop_length, spec.n_bins, spec.n_frames) == (16000, 1024, 256, 512, 64)
    assert abs(spec.duration - 1.008) < 1e-9
    with pytest.raises(BssvaeError, match="input_dim"):
        spectrogram_spec(784)


@pytest.mark.parametrize("input_dim", sorted(SPECTROGRAMS))
def test_istft_with_mixture_phase_reconstructs_the_mixture(input_dim):
    spec = spectrogram_spec(input_dim)
    t = torch.arange(spec.n_samples, dtype=torch.float64) / spec.sample_rate
    x = 0.3 * torch.sin(2 * np.pi * 220 * t) + 0.2 * torch.sin(2 * np.pi * 331 * t + 1.0)
    x = torch.stack([x, 0.5 * x.flip(0)])
    y = waveforms_from_magnitudes(magnitude(x, spec).unsqueeze(1), x, spec)[:, 0]
    for a, b in zip(y.numpy(), x.numpy()):
        assert _si_sdr(a, b) > 40.0


def test_normalised_magnitudes_fill_the_unit_interval(task):
    g = torch.Generator().manual_seed(0)
    batches = list(task.epoch_batches(g, 32))
    assert len(batches) == task.mixtures_per_epoch // 32
    x = torch.cat(batches)
    assert x.shape[1] == task.input_dim
    assert float(x.min()) >= 0.0
    torch.testing.assert_close(x.amax(dim=1), torch.ones(x.shape[0]))
    tx, ts = task.test_set()
    torch.testing.assert_close(tx.amax(dim=1), torch.ones(tx.shape[0]))
    assert ts.shape == (tx.shape[0], 2, task.input_dim)
    # x = sum of the sources' magnitudes where they do not overlap: the sum is never far below x.
    assert float((ts.sum(dim=1) - tx).min()) > -1e-5


# ---------------------------------------------------------------------------- mixtures


def test_mixtures_pair_different_instruments_reproducibly(smoke_bank):
    train, _ = smoke_bank.split()
    idx, gains = draw_mixtures(train, 500, 2, torch.Generator().manual_seed(3))
    inst = train.instrument[idx.numpy()]
    assert (inst[:, 0] != inst[:, 1]).all()
    assert len(np.unique(inst)) == 9
    assert float(gains.min()) >= 0.5 * 10 ** (-6 / 20) - 1e-6 and float(gains.max()) <= 0.5 + 1e-6
    idx2, gains2 = draw_mixtures(train, 500, 2, torch.Generator().manual_seed(3))
    assert torch.equal(idx, idx2) and torch.equal(gains, gains2)
    with pytest.raises(BssvaeError, match="different instruments"):
        draw_mixtures(train, 5, 10, torch.Generator())


def test_test_set_is_fixed_distinct_and_starts_with_figure3_pair(task, data_dir):
    again = AudioTask.build(make_config("smoke", "audio", n_test=40), "cpu")
    torch.testing.assert_close(again.test_x, task.test_x)
    keys = {tuple(sorted(r)) for r in task.test_notes.tolist()}
    assert len(keys) == task.test_notes.shape[0]
    first = task.describe_test(1)
    assert tuple(first["instruments"][0]) == FIGURE3_PAIR
    assert (first["pitch"] % 4 == 0).all()  # test notes come from held-out pitches
    fewer = AudioTask.build(make_config("smoke", "audio", n_test=10), "cpu")
    assert torch.equal(fewer.test_notes, task.test_notes[:10])  # the first mixtures do not depend on n_test
    with pytest.raises(BssvaeError, match="n_test"):
        AudioTask.build(make_config("smoke", "audio", n_test=100000), "cpu")


# ---------------------------------------------------------------------------- evaluation


def test_oracle_estimates_score_high_and_the_mixture_low(task):
    x, s = task.test_set()
    oracle = task.evaluate(s).summary()
    irm = task.evaluate(ideal_ratio_mask(s, x)).summary()
    ibm = task.evaluate(ideal_binary_mask(s, x)).summary()
    mixture = task.evaluate(x.unsqueeze(1).expand(-1, 2, -1)).summary()
    assert oracle["si_sdr"] > 10.0 and irm["si_sdr"] > 10.0 and ibm["si_sdr"] > 10.0
    assert oracle["si_sdr"] > mixture["si_sdr"] + 10.0
    assert abs(mixture["si_sdri"]) < 0.01  # the mixture (through the STFT and back) improves nothing
    assert ibm["sir"] > irm["sir"]  # binary masks leave less interference
    for scores in (oracle, irm, ibm, mixture):
        assert all(np.isfinite(v) for v in scores.values())


def test_surplus_estimates_are_dropped_and_missed_sources_floored(task):
    x, s = task.test_set()
    oracle = task.evaluate(s)
    # A silent third estimate is never matched: the scores are the oracle's, whatever its position.
    k3 = task.evaluate(torch.cat([s[:, :1], torch.zeros_like(s[:, :1]), s[:, 1:]], dim=1))
    np.testing.assert_allclose(k3.per_source["si_sdr"], oracle.per_source["si_sdr"], rtol=1e-6)
    assert set(k3.assignment.flatten().tolist()) <= {0, 2}
    k1 = task.evaluate(s[:, :1])
    assert (np.sort(k1.per_source["si_sdr"], axis=1)[:, 0] == -CLAMP_DB).all()


def test_silent_estimates_stay_finite(task):
    _, s = task.test_set()
    scores = task.evaluate(torch.zeros_like(s))
    for v in scores.summary().values():
        assert np.isfinite(v)
    assert scores.si_sdr == -CLAMP_DB
    with pytest.raises(BssvaeError, match="silent"):
        bss_eval(torch.randn(2, 2, 100), torch.zeros(2, 2, 100))


def test_linearly_dependent_references_are_named():
    """SI-SIR/SI-SAR project onto the references' span: a repeated (or scaled) source is named, not a LinAlgError."""
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(3, 2, 200, generator=g, dtype=torch.float64)
    ref[2, 1] = 0.5 * ref[2, 0]
    est = ref + 0.1 * torch.randn(ref.shape, generator=g, dtype=torch.float64)
    with pytest.raises(BssvaeError, match=r"references: the true sources of mixture\(s\) \[2\] are linearly dependent"):
        bss_eval(est, ref)
    assert np.isfinite(bss_eval(est[:2], ref[:2]).si_sdr)


def test_evaluate_rejects_bad_estimates(task):
    x, s = task.test_set()
    with pytest.raises(BssvaeError, match="estimates"):
        task.evaluate(s[:, :, :-1])
    with pytest.raises(BssvaeError, match="estimates"):
        task.evaluate(s[:-1])
    with pytest.raises(BssvaeError, match=">= 0"):
        task.evaluate(-s)
    bad = s.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(BssvaeError, match="finite"):
        task.evaluate(bad)


def test_examples_give_waveforms_to_listen_to(task):
    x, s = task.test_set()
    ex = task.examples({"irm": ideal_ratio_mask(s, x), "k3": torch.cat([s, s[:, :1]], dim=1)}, n=3)
    n_samples = task.spec.n_samples
    assert int(ex["sample_rate"]) == task.spec.sample_rate
    assert ex["x"].shape == (3, n_samples) and ex["s"].shape == (3, 2, n_samples)
    assert ex["irm"].shape == (3, 2, n_samples) and ex["k3"].shape == (3, 3, n_samples)
    assert ex["instruments"].shape == (3, 2) and tuple(ex["instruments"][0]) == FIGURE3_PAIR
    np.testing.assert_allclose(ex["irm"].sum(axis=1), ex["x"], atol=2e-3)  # IRM sums to x (but the Nyquist bin)
    with pytest.raises(BssvaeError, match="reserved"):
        task.examples({"x": s})


# ---------------------------------------------------------------------------- input validation


def test_prepare_waveform_downmixes_resamples_pads_and_rejects():
    spec = SMOKE
    stereo = np.random.default_rng(0).standard_normal((spec.n_samples, 2)).astype(np.float32) * 0.1
    np.testing.assert_allclose(prepare_waveform(stereo, spec.sample_rate, spec).numpy(), stereo.mean(axis=1),
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(BssvaeError, match="waveform.T"):
        prepare_waveform(stereo.T, spec.sample_rate, spec)
    t = np.arange(2 * spec.n_samples) / (2 * spec.sample_rate)
    tone = np.sin(2 * np.pi * 500 * t)
    out = prepare_waveform(tone, 2 * spec.sample_rate, spec).numpy()  # 16 kHz -> 8 kHz
    ref = np.sin(2 * np.pi * 500 * np.arange(spec.n_samples) / spec.sample_rate)
    assert _si_sdr(out[50:-50], ref[50:-50]) > 30
    short = prepare_waveform(np.ones(10), spec.sample_rate, spec).numpy()
    assert short.shape == (spec.n_samples,) and short[10:].max() == 0
    for bad, match in ((np.zeros(0), "non-empty"), (np.array([np.nan, 1.0]), "finite"),
                       (np.zeros((2, 2, 2)), "dimensions"), (["a"], "numeric|Tensor")):
        with pytest.raises(BssvaeError, match=match):
            prepare_waveform(np.asarray(bad) if not isinstance(bad, list) else bad, 8000, spec)
    with pytest.raises(BssvaeError, match="sample_rate"):
        prepare_waveform(np.zeros(10), 0, spec)


def test_separate_waveform_is_finite_for_silence_and_stereo():
    model = VAEBSS(ModelConfig(1024, (32,), 4, 2)).eval()
    silent = separate_waveform(model, np.zeros((SMOKE.n_samples, 2)), SMOKE.sample_rate)
    assert silent.shape == (2, SMOKE.n_samples) and torch.isfinite(silent).all() and silent.abs().max() == 0
    noisy = separate_waveform(model, np.random.default_rng(1).standard_normal(3000) * 0.1, 16000)
    assert torch.isfinite(noisy).all()
    with pytest.raises(BssvaeError, match="input_dim"):
        separate_waveform(VAEBSS(ModelConfig(784, (16,), 2, 2)), np.zeros(100), 8000)


def test_task_rejects_a_bank_of_another_geometry(smoke_bank):
    config = make_config("smoke", "audio", model={"input_dim": 8192, "hidden_dims": (16,), "latent_dim": 2})
    with pytest.raises(DataError, match="do not fit"):
        AudioTask.build(config, "cpu", bank=smoke_bank)


# ---------------------------------------------------------------------------- NSynth


def test_nsynth_fixture_loads_filtered_and_split():
    bank = read_nsynth(FIXTURE / "nsynth-test", 16000, SPECTROGRAMS[32768].n_samples)
    # 7 acoustic notes of orchestral families, one silent; the electronic and guitar notes are left out.
    assert len(bank) == 6 and bank.meta["skipped_silent"] == 1
    assert bank.instrument_names == NSYNTH_FAMILIES
    assert bank.counts() == {"brass": 2, "flute": 0, "keyboard": 0, "reed": 2, "string": 2}
    np.testing.assert_allclose(np.abs(bank.waveforms).max(axis=1), 1.0, rtol=1e-6)
    train, test = bank.split()
    assert sorted(test.pitch.tolist()) == [60, 64]
    low = read_nsynth(FIXTURE / "nsynth-test", 8000, SMOKE.n_samples)  # resampled to 8 kHz
    assert low.waveforms.shape == (6, SMOKE.n_samples)
    with pytest.raises(DataError, match="examples.json"):
        read_nsynth(FIXTURE, 16000, 100)


def _fixture_archive(tmp_path: Path) -> tuple[Path, str]:
    archive = tmp_path / "src" / "nsynth-test.jsonwav.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(FIXTURE / "nsynth-test", arcname="nsynth-test")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_nsynth_download_checks_md5_and_extracts_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("BSSVAE_DATA", str(tmp_path / "data"))
    archive, md5 = _fixture_archive(tmp_path)
    root = tmp_path / "nsynth"
    with pytest.raises(DataError, match="MD5 mismatch"):
        download_nsynth("test", root, url=archive.as_uri(), md5="0" * 32)
    assert not (root / "nsynth-test").exists() and not list(root.glob("*.tar.gz"))
    target = download_nsynth("test", root, url=archive.as_uri(), md5=md5)
    assert (target / "examples.json").exists() and len(list((target / "audio").glob("*.wav"))) == 9
    manifest = json.loads((root / "nsynth-manifest.json").read_text())
    assert manifest["test"]["md5"] == md5 and len(manifest["test"]["sha256"]) == 64
    assert not list(root.glob(".nsynth-*"))  # no leftover temporary directory
    archive.unlink()  # already extracted: nothing is fetched again
    assert download_nsynth("test", root, url=archive.as_uri(), md5=md5) == target
    bank = nsynth_notes(SMOKE.sample_rate, SMOKE.n_samples, splits=("test",), root=root, download=False)
    assert len(bank) == 6 and list((tmp_path / "data" / "audio").glob("nsynth-*.npz"))


def test_nsynth_offline_refuses_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("BSSVAE_OFFLINE", "1")
    with pytest.raises(DataError, match="BSSVAE_OFFLINE"):
        download_nsynth("valid", tmp_path)
    with pytest.raises(BssvaeError, match="split"):
        download_nsynth("everything", tmp_path)


# ---------------------------------------------------------------------------- training


def test_smoke_training_writes_audio_rows(data_dir, tmp_path, monkeypatch):
    from bssvae.train import train

    root = tmp_path / "root"
    (root / "bssvae").mkdir(parents=True)
    (root / "_toc.yml").write_text("")
    monkeypatch.setenv("BSSVAE_ROOT", str(root))
    config = make_config("smoke", "audio")
    out = train(config, progress=False)
    assert out["completed"] and {r["method"] for r in out["rows"]} == {"vae", "vaem"}
    table = pd.read_csv(root / "results" / "smoke" / "audio.csv")
    assert sorted(table["method"]) == ["vae", "vaem"]
    for col in ("si_sdr", "sir", "sar", "si_sdri"):
        assert np.isfinite(table[col]).all()
    assert (Path(out["run_dir"]) / "examples.npz").exists()
    # Re-evaluating without --write leaves the run directory as it was (audio examples included).
    from bssvae.cli import main

    run = Path(out["run_dir"])
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert "audio_examples.npz" in before
    assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


@pytest.mark.parametrize("method", ["nmf", "mixit", "ibm", "irm"])
def test_table3_baselines_run_on_audio(project, task, method):
    """Table III's baseline rows end to end on the smoke audio task: scores, the files the book reads."""
    from bssvae.baselines import baseline_config, run_baseline

    config = baseline_config("smoke", "audio", method, 2, n_test=40, epochs=1)
    out = run_baseline(config, task=task)
    row = out["rows"][0]
    assert out["completed"] and row["method"] == method
    assert all(np.isfinite(row[c]) for c in ("si_sdr", "sir", "sar", "si_sdri"))
    if method in ("ibm", "irm"):  # oracles: better than leaving the mixture unseparated
        assert row["si_sdri"] > 0
    run = Path(out["run_dir"])
    assert {"config.json", "settings.json", "metrics.json", "provenance.json", "examples.npz",
            "audio_examples.npz"} <= {p.name for p in run.iterdir()}
    assert pd.read_csv(project / "results" / "smoke" / "audio.csv")["method"].tolist() == [method]


def test_nsynth_notes_go_through_the_same_task():
    bank = read_nsynth(FIXTURE / "nsynth-test", SMOKE.sample_rate, SMOKE.n_samples)
    task = AudioTask.build(make_config("smoke", "audio", n_test=1), "cpu", bank=bank)
    assert task.info["source"] == "nsynth" and task.info["train_notes"] == 4
    pair = task.describe_test()["instruments"][0]
    assert sorted(pair) == ["brass", "reed"]  # the two held-out notes, of two different families
    x = next(task.epoch_batches(torch.Generator().manual_seed(0), 2))
    assert x.shape == (2, SMOKE.input_dim)
    assert all(np.isfinite(v) for v in task.evaluate(task.test_s).summary().values())
