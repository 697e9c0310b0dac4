"""What the audio experiment's pitch hold-out does to its test pairs, and two other limits of its protocol.

Usage (from the repository root, BSSVAE_OFFLINE=1 where nothing may be downloaded):
    python results/ablations/audio-test-intervals/intervals.py OUT.json [--no-nmf]

Everything is measured on the ``paper`` profile's audio task exactly as its committed runs built it
(``results/paper/runs/audio-*``: 512 x 64 spectrograms at 16 kHz, the rendered SoundFont notes split
by ``NoteBank.split()``, 1,000 test mixtures of seed 0); nothing is trained and nothing committed
changes.

1. **Intervals.** The split holds out every MIDI pitch divisible by ``TEST_PITCH_PERIOD`` = 4 (C, E
   and G# of every octave), so two test pitches lie 0, 4 or 8 semitones apart modulo 12. For the
   1,000 test pairs and for training pairs (exactly, by enumerating ``draw_mixtures``'s law:
   instruments uniformly without replacement, a note uniformly within each; and empirically, 100,000
   draws from a seeded generator) it records the distribution of the interval modulo 12, and the
   share of unisons (same pitch) and of unisons or octaves (interval a multiple of 12).
2. **Oracles by interval class.** The ideal ratio and binary masks (``bssvae.masks``) of the 1,000
   test mixtures, scored by ``task.evaluate`` as the committed oracle rows were (their means must
   equal ``results/paper/audio.csv``'s ``irm`` and ``ibm`` rows), split by interval class: all pairs,
   unisons or octaves, the others, and each class modulo 12.
3. **Hypothetical splits** (not what any run used; their training sets differ too): the same
   oracles and interval shares for a hold-out of every pitch divisible by 5 (coprime to 12, so test
   pairs meet every interval class modulo 12, but two test pitches are a multiple of 5 semitones
   apart, so an octave needs 60 of them and a fifth 55) and for random quarters of the MIDI
   pitches 21-108 (22 pitches, ``numpy.random.default_rng(seed)``, seeds :data:`RANDOM_SEEDS`).
   For reference, the interval shares of pairs drawn from the whole bank as training draws them.
4. **NMF atoms** (skipped with ``--no-nmf``): the audio NMF baseline refitted with the ``paper``
   profile's settings and seed 0 (``bssvae.baselines.nmf``: 40 atoms, each a whole 512 x 64
   training-mixture spectrogram), its test score beside the committed seed-0 row, and its relative
   L1 reconstruction error sum|x - wH| / sum|x| (activations found with the dictionary fixed) on its
   fitting mixtures, on fresh training mixtures and on the test mixtures. An all-zero
   reconstruction has error 1.
5. **MixIT's mixtures of mixtures**: for MoMs drawn as ``bssvae.baselines.mixit`` draws them (two
   halves of a training batch of 2 x 64 peak-normalised mixture spectrograms, added), the relative
   L1 difference between that sum of magnitudes and the magnitude of the sum of the same two
   (equally scaled) waveforms, which is what a waveform-domain MoM (Wisdom et al.) would feed; and
   the natural level ratio of the two mixtures (ratio of their spectrogram peaks), which the
   peak normalisation sets to 0 dB.
"""
import json
import sys
import time
from pathlib import Path

# bssvae before torch: it sets how OpenMP's threads wait (bssvae.openmp) before torch starts them
from bssvae.audio import TEST_PITCH_PERIOD, magnitude
from bssvae.audio.task import AudioTask, draw_mixtures, load_notes
from bssvae.baselines import method_settings
from bssvae.config import make_config
from bssvae.masks import ideal_binary_mask, ideal_ratio_mask
from bssvae.results import atomic_write_json, provenance

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
N_TRAIN_DRAWS = 100_000
#: Seeds of the hypothetical random hold-outs (a quarter of MIDI pitches 21-108 each).
RANDOM_SEEDS = (0, 1, 2)


def intervals(pitches: np.ndarray) -> dict:
    """Interval statistics of pairs of pitches (n, 2)."""
    d = np.abs(pitches[:, 0] - pitches[:, 1])
    hist = np.bincount(d % 12, minlength=12)
    return {"n_pairs": int(len(d)), "unison": float((d == 0).mean()), "unison_or_octave": float((d % 12 == 0).mean()),
            "interval_mod_12_share": {str(i): float(h / len(d)) for i, h in enumerate(hist)}}


def exact_training_intervals(bank) -> dict:
    """The law of draw_mixtures for M = 2: instruments uniform without replacement, notes uniform within each."""
    names = np.unique(bank.instrument)
    per = {i: bank.pitch[bank.instrument == i] for i in names}
    hist = np.zeros(12)
    unison = 0.0
    weight = 1.0 / (len(names) * (len(names) - 1))
    for a in names:
        for b in names:
            if a == b:
                continue
            d = np.abs(per[a][:, None] - per[b][None, :])
            hist += weight * np.bincount((d % 12).ravel(), minlength=12) / d.size
            unison += weight * (d == 0).mean()
    return {"unison": float(unison), "unison_or_octave": float(hist[0]),
            "interval_mod_12_share": {str(i): float(h) for i, h in enumerate(hist)}}


def by_class(task: AudioTask) -> dict:
    """IRM and IBM SI-SDR / SIR / SAR of the task's test mixtures, by interval class."""
    x, s = task.test_set()
    p = task.test.pitch[task.test_notes.numpy()]
    d = np.abs(p[:, 0] - p[:, 1])
    groups = {"all": np.ones(len(d), bool), "unison or octave": d % 12 == 0, "other": d % 12 != 0,
              "unison": d == 0}
    for c in sorted(set((d % 12).tolist())):
        groups[f"interval mod 12 = {c}"] = d % 12 == c
    out = {}
    for name, mask_fn in (("irm", ideal_ratio_mask), ("ibm", ideal_binary_mask)):
        sc = task.evaluate(mask_fn(s, x))
        out[name] = {"summary": sc.summary(), "by_class": {
            g: {"n": int(m.sum()), **{k: float(sc.per_item[k][m].mean()) for k in ("si_sdr", "sir", "sar")}}
            for g, m in groups.items() if m.any()}}
    return out


def nmf_check(task: AudioTask, config) -> dict:
    """Refit the paper profile's audio NMF (seed 0) and measure how well its atoms rebuild train and test mixtures."""
    from bssvae.baselines.common import training_mixtures
    from bssvae.baselines.nmf import assign_atoms, fit_dictionary, separate

    st = method_settings("nmf", "paper", "audio")
    k = config.n_sources
    t0 = time.time()
    gen = torch.Generator().manual_seed(config.seed)
    fit = training_mixtures(task, gen, int(st["n_fit"]))
    nmf = fit_dictionary(fit, st["components_per_source"] * k, st["beta_loss"], st["max_iter"], st["tol"],
                         config.seed)
    labels = assign_atoms(nmf.components_, k, config.seed, st["kmeans_n_init"])
    fit_seconds = time.time() - t0
    x = task.test_set()[0].float().cpu()
    score = task.evaluate(separate(nmf, labels, x, k)).summary()
    fresh = training_mixtures(task, torch.Generator().manual_seed(12345), 1000)

    def rel_l1(v: torch.Tensor) -> float:
        v = v.numpy().astype(np.float32)
        return float(np.abs(v - nmf.transform(v) @ nmf.components_).sum() / np.abs(v).sum())

    committed = pd.read_csv(ROOT / "results" / "paper" / "audio.csv")
    row = committed[(committed["method"] == "nmf") & (committed["seed"] == config.seed)].iloc[0]
    return {"settings": st, "atoms": list(nmf.components_.shape), "n_iter": int(nmf.n_iter_),
            "atoms_per_source": np.bincount(labels, minlength=k).tolist(), "fit_seconds": round(fit_seconds, 1),
            "test_scores": score, "committed_seed0": {m: float(row[m]) for m in ("si_sdr", "sir", "sar")},
            "relative_l1_error": {"fitting mixtures (first 1000 of 2000)": rel_l1(fit[:1000]),
                                  "fresh training mixtures (1000, seed 12345)": rel_l1(fresh),
                                  "test mixtures (1000)": rel_l1(x)}}


def mixit_mom_check(task: AudioTask, batch_size: int, n_epochs: int = 20) -> dict:
    """How MixIT's magnitude-domain mixtures of mixtures differ from waveform-domain ones (see the docstring)."""
    gen = torch.Generator().manual_seed(0)
    rel, ratio = [], []
    for _ in range(n_epochs):
        # what task.epoch_batches(gen, 2 * batch_size) draws and mixes, with the waveforms kept
        idx, gains = draw_mixtures(task.train, task.mixtures_per_epoch, task.n_digits, gen, task.level_db)
        idx, gains = idx[:2 * batch_size], gains[:2 * batch_size]
        wave = (task.train_waves[idx] * gains.unsqueeze(-1)).sum(dim=1)  # (2B, L) mixture waveforms
        mag = magnitude(wave, task.spec)
        peak = mag.amax(dim=-1, keepdim=True)
        assert torch.allclose(mag / peak, task.mix(idx, gains), atol=1e-6)  # the mixtures MixIT is fed
        half = wave.shape[0] // 2
        code = mag[:half] / peak[:half] + mag[half:2 * half] / peak[half:2 * half]  # model(refs.sum(dim=1))
        wave_mom = magnitude(wave[:half] / peak[:half] + wave[half:2 * half] / peak[half:2 * half], task.spec)
        rel.append(((code - wave_mom).abs().sum(-1) / wave_mom.sum(-1)).numpy())
        ratio.append(20 * np.log10((peak[:half] / peak[half:2 * half]).flatten().numpy()))
    rel, ratio = np.concatenate(rel), np.abs(np.concatenate(ratio))
    return {"n_mixtures_of_mixtures": int(len(rel)), "epochs_drawn": n_epochs,
            "relative_l1_sum_of_magnitudes_vs_magnitude_of_sum": {
                "mean": float(rel.mean()), "p5": float(np.percentile(rel, 5)), "p95": float(np.percentile(rel, 95))},
            "natural_level_ratio_abs_db": {"median": float(np.median(ratio)), "p95": float(np.percentile(ratio, 95))}}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        raise SystemExit(__doc__)
    out, do_nmf = Path(args[0]), "--no-nmf" not in sys.argv
    torch.set_num_threads(2)
    t_start = time.time()
    # taken at the start: the commit the measurement ran at, whatever is edited while it runs
    prov = provenance("cpu", command=" ".join(["python"] + sys.argv))
    config = make_config("paper", task="audio")
    task = AudioTask.build(config, device="cpu")
    bank = load_notes(task.spec)
    committed = pd.read_csv(ROOT / "results" / "paper" / "audio.csv").set_index("method")

    test_pairs = task.test.pitch[task.test_notes.numpy()]
    idx, _ = draw_mixtures(task.train, N_TRAIN_DRAWS, 2, torch.Generator().manual_seed(0))
    result = {
        "split": {"test_pitch_period": TEST_PITCH_PERIOD, "train_notes": len(task.train), "test_notes": len(task.test),
                  "n_test": config.n_test, "test_seed": config.test_seed, "spectrogram": task.spec.to_dict()},
        "intervals": {"test pairs (the committed test set)": intervals(test_pairs),
                      "training pairs, exact": exact_training_intervals(task.train),
                      f"training pairs, {N_TRAIN_DRAWS} draws (seed 0)": intervals(task.train.pitch[idx.numpy()])},
        "oracles": by_class(task),
        "committed_oracles": {m: {k: float(committed.loc[m, k]) for k in ("si_sdr", "sir", "sar")}
                              for m in ("irm", "ibm")},
    }
    print(json.dumps(result["intervals"]["test pairs (the committed test set)"]), flush=True)
    print(json.dumps({m: v["by_class"] for m, v in result["oracles"].items()}), flush=True)

    result["intervals"]["pairs of the whole bank (no hold-out), exact"] = exact_training_intervals(bank)
    splits = {"period 5": ("hypothetical: every MIDI pitch divisible by 5 held out (5 is coprime to 12)",
                           np.flatnonzero(np.arange(128) % 5 == 0))}
    for seed in RANDOM_SEEDS:
        splits[f"random quarter, seed {seed}"] = (
            f"hypothetical: 22 of the 88 MIDI pitches 21-108 held out at random (numpy default_rng({seed}))",
            np.sort(np.random.default_rng(seed).choice(np.arange(21, 109), size=22, replace=False)))
    hypothetical = {}
    for name, (what, held_out) in splits.items():
        test = np.isin(bank.pitch, held_out)
        tr, te = bank.select(~test), bank.select(test)
        t = AudioTask.from_banks(task.spec, tr, te, n_sources=2, n_test=config.n_test, test_seed=config.test_seed)
        i2, _ = draw_mixtures(tr, N_TRAIN_DRAWS, 2, torch.Generator().manual_seed(0))
        hypothetical[name] = {"what": what, "train_notes": len(tr), "test_notes": len(te),
                              "test_pitches_mod_12": sorted({int(p) % 12 for p in te.pitch}),
                              "intervals": {"test pairs": intervals(te.pitch[t.test_notes.numpy()]),
                                            "training pairs, exact": exact_training_intervals(tr)},
                              "oracles": by_class(t)}
        if name.startswith("random"):
            hypothetical[name]["held_out_pitches"] = [int(p) for p in held_out]
        print(name, json.dumps({m: v["summary"] for m, v in hypothetical[name]["oracles"].items()}), flush=True)
    result["hypothetical_splits"] = hypothetical

    result["mixit_mixtures_of_mixtures"] = mixit_mom_check(task, config.batch_size)
    print(json.dumps(result["mixit_mixtures_of_mixtures"]), flush=True)
    if do_nmf:
        result["nmf"] = nmf_check(task, config)
        print(json.dumps(result["nmf"]), flush=True)
    prov["wall_seconds"] = round(time.time() - t_start, 1)
    prov["written_at"] = provenance("cpu")["written_at"]
    atomic_write_json(out, {**result, **prov})


if __name__ == "__main__":
    main()
