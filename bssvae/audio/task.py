"""The audio task: mixtures of two notes of different instruments, as magnitude spectrograms.

Mixing (our protocol; the paper does not describe MUMS's pairing):

- A mixture draws M notes (M = ``n_digits`` = 2 for Table III) of M **different** instruments:
  the instruments uniformly without replacement, then a note uniformly within each, so every
  instrument is equally likely however many notes it has. Two notes may share a pitch (a unison:
  6.5 % of our test pairs, whose pitches are every 4th semitone), the hardest case; with the
  octaves, whose harmonics coincide too, 33.6 % of the test pairs against 11.1 % of the training
  pairs, because the pitch split makes every test interval 0, 4 or 8 semitones modulo 12
  (:mod:`bssvae.audio.notes`).
- Each source is a note (peak 1) times ``0.5 * 10^(g / 20)`` with a level g drawn uniformly in
  :data:`LEVEL_DB` = [-6, 0] dB: the two notes are within 6 dB of each other, and the mixture
  waveform ``x = s_1 + s_2`` stays within [-1, 1].
- **Scale.** Magnitudes are first normalised by the window's sum (:mod:`bssvae.audio.spectrogram`),
  which keeps them in [0, 1] but small (at the paper's size a test mixture's largest bin lies
  between 0.08 and 0.18 for 80 % of mixtures, and 97 % of all bins are below 0.01). Then each mixture's spectrogram is divided by its own largest
  value, and its sources by **the same** number (:func:`normalize_by_mixture`): the mixture fills
  [0, 1] with a peak of exactly 1, as the decoder's sigmoid allows, and ``x = sum_m s_m`` keeps
  holding between magnitudes. A true source's bin can exceed 1 only where the two notes cancel
  each other in the mixture (at the paper's size, 1 bin in 100,000, by at most 20 %). Without this step the Laplace likelihood
  (fixed b) weighs so little against the KL term that the posterior collapses: in our trial at the
  smoke size the KL fell to 0.1 nat and both decoded sources became the same average spectrum.
  The factor is kept for the test set, so estimates are scaled back before the inverse STFT;
  it also makes the model insensitive to the recording's level.
- **Training** mixtures are drawn afresh every epoch: the note and level draws come from the
  run's CPU generator (the same on every device), then the mixing and the STFT run on the
  device over the waveform bank kept there. An epoch has ``len(train notes) // M`` mixtures.
- The **test** set is fixed, drawn from the held-out pitches with ``test_seed``: ``n_test``
  distinct mixtures; when both exist, mixture 0 pairs a bassoon and a violin, the instruments of
  the paper's Figure 3.

Evaluation turns estimated magnitudes into waveforms with the mixture's phase and scores them
against the true source waveforms (:mod:`bssvae.audio.evaluation`).

Data source: the rendered SoundFont notes by default, NSynth with ``source="nsynth"`` or the
environment variable ``BSSVAE_AUDIO_SOURCE=nsynth`` (TrainConfig has no dataset field).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from ..errors import BssvaeError, DataError, check_int, check_tensor
from .evaluation import AudioScores, bss_eval
from .notes import INSTRUMENTS, NoteBank, soundfont_notes
from .spectrogram import SpectrogramSpec, magnitude, spectrogram_spec, waveforms_from_magnitudes

#: Range of each source's level, in dB relative to a peak of :data:`SOURCE_PEAK`.
LEVEL_DB = (-6.0, 0.0)
#: Peak of a source at level 0 dB; M = 2 sources of this peak sum to a mixture of peak <= 1.
SOURCE_PEAK = 0.5
AUDIO_SOURCES = ("soundfont", "nsynth")
#: The pair of instruments forced into test mixture 0 (the paper's Figure 3).
FIGURE3_PAIR = ("bassoon", "violin")


def normalize_by_mixture(x: torch.Tensor, s: torch.Tensor | None = None, eps: float = 1e-12):
    """Divide each mixture spectrogram, and its sources, by the mixture's largest value.

    A silent mixture (largest value <= eps) is left as it is (factor 1), so nothing divides by 0.

    Shape: x (B, D), s (B, M, D) or None -> x (B, D), s (B, M, D) or None, factor (B,).
    """
    peak = x.amax(dim=-1)
    factor = torch.where(peak > eps, peak, torch.ones_like(peak))
    x = x / factor.unsqueeze(-1)
    if s is not None:
        s = s / factor[:, None, None]
    return x, s, factor


def load_notes(spec: SpectrogramSpec, source: str = "soundfont", **kwargs) -> NoteBank:
    """The note bank of a data source at a spectrogram geometry's rate and length."""
    if source not in AUDIO_SOURCES:
        raise BssvaeError(f"source: expected one of {list(AUDIO_SOURCES)}, got {source!r}")
    if source == "soundfont":
        return soundfont_notes(spec.sample_rate, spec.n_samples, **kwargs)
    from .nsynth import nsynth_notes

    return nsynth_notes(spec.sample_rate, spec.n_samples, **kwargs)


def _groups(bank: NoteBank) -> tuple[torch.Tensor, torch.Tensor]:
    """Notes sorted by instrument: (order, counts) so that instrument i's notes are
    ``order[offsets[i] : offsets[i] + counts[i]]``."""
    order = torch.from_numpy(np.argsort(bank.instrument, kind="stable"))
    counts = torch.from_numpy(np.bincount(bank.instrument, minlength=len(bank.instrument_names)))
    return order, counts


def draw_mixtures(bank: NoteBank, n_mixtures: int, n_sources: int, generator: torch.Generator,
                  level_db: tuple[float, float] = LEVEL_DB) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw mixtures of notes of distinct instruments, and the level of each source.

    Vectorised on the CPU (reproducible across devices). Instruments with no note are never drawn.

    Returns:
        note indices (n_mixtures, M) int64 into ``bank``, and gains (n_mixtures, M) float32
        (``SOURCE_PEAK * 10^(g / 20)``).

    Raises:
        BssvaeError: if the bank has fewer than M instruments.
    """
    order, counts = _groups(bank)
    present = torch.nonzero(counts > 0).flatten()
    if len(present) < n_sources:
        raise BssvaeError(f"n_digits: mixtures of {n_sources} different instruments need {n_sources} instruments, "
                          f"the notes have {len(present)} ({bank.counts()})")
    offsets = torch.cumsum(counts, 0) - counts
    inst = present[torch.rand(n_mixtures, len(present), generator=generator).argsort(dim=1)[:, :n_sources]]
    within = (torch.rand(n_mixtures, n_sources, generator=generator) * counts[inst]).long()
    within = torch.minimum(within, counts[inst] - 1)
    idx = order[offsets[inst] + within]
    lo, hi = level_db
    g = lo + (hi - lo) * torch.rand(n_mixtures, n_sources, generator=generator)
    return idx, (SOURCE_PEAK * 10 ** (g / 20)).float()


def distinct_mixtures(bank: NoteBank, n_sources: int) -> int:
    """How many distinct sets of ``n_sources`` notes of different instruments the bank holds.

    The elementary symmetric polynomial of degree M of the notes-per-instrument counts.
    """
    e = [1] + [0] * n_sources
    for c in np.bincount(bank.instrument, minlength=len(bank.instrument_names)).tolist():
        for m in range(n_sources, 0, -1):
            e[m] += e[m - 1] * c
    return e[n_sources]


def draw_test_mixtures(bank: NoteBank, n_mixtures: int, n_sources: int, seed: int,
                       level_db: tuple[float, float] = LEVEL_DB) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded set of ``n_mixtures`` distinct mixtures (no repeated set of notes).

    Mixture 0 pairs a bassoon and a violin note when M = 2 and both instruments are present.

    Raises:
        BssvaeError: if the notes cannot make that many distinct mixtures.
    """
    n_mixtures = check_int("n_mixtures", n_mixtures, minimum=1)
    possible = distinct_mixtures(bank, n_sources)
    if n_mixtures > possible:
        raise BssvaeError(f"n_test: the {len(bank)} test notes make {possible} distinct mixtures of {n_sources} "
                          f"different instruments, asked for {n_mixtures}")
    g = torch.Generator().manual_seed(seed)
    seen: set[tuple[int, ...]] = set()
    keep_idx, keep_gain = [], []
    names = bank.instrument_names
    if n_sources == 2 and all(n in names for n in FIGURE3_PAIR):
        a, b = (np.flatnonzero(bank.instrument == names.index(n)) for n in FIGURE3_PAIR)
        if len(a) and len(b):
            pick = torch.randint(0, 1 << 30, (2,), generator=g)
            pair = (int(a[int(pick[0]) % len(a)]), int(b[int(pick[1]) % len(b)]))
            lo, hi = level_db
            gain = SOURCE_PEAK * 10 ** ((lo + (hi - lo) * torch.rand(2, generator=g)) / 20)
            keep_idx.append(torch.tensor(pair))
            keep_gain.append(gain.float())
            seen.add(tuple(sorted(pair)))
    for _ in range(1000):
        if len(keep_idx) >= n_mixtures:
            break
        # Rounds of a fixed size: the first mixtures do not depend on n_mixtures (a prefix property,
        # so runs with different n_test share their first test mixtures and examples).
        idx, gain = draw_mixtures(bank, 1024, n_sources, g, level_db)
        for i in range(idx.shape[0]):
            key = tuple(sorted(idx[i].tolist()))
            if key not in seen:
                seen.add(key)
                keep_idx.append(idx[i])
                keep_gain.append(gain[i])
                if len(keep_idx) >= n_mixtures:
                    break
    if len(keep_idx) < n_mixtures:
        raise BssvaeError(f"n_test: {len(keep_idx)} distinct mixtures found in 1000 rounds of draws, of the "
                          f"{possible} possible, asked for {n_mixtures}; ask for fewer")
    return torch.stack(keep_idx), torch.stack(keep_gain)


@dataclass
class AudioTask:
    """Instrument-note mixtures as magnitude spectrograms: the task interface of :mod:`bssvae.train`.

    Same interface as :class:`bssvae.data.MnistTask`: ``name``, ``input_dim``,
    ``mixtures_per_epoch``, :meth:`epoch_batches`, :meth:`test_set`, :meth:`evaluate`, plus
    :meth:`examples` (waveforms to listen to).

    Shapes (N train notes, B test mixtures, M sources, L samples, D = F x T):
        train_waves (N, L) on the device; test_x (B, D) and test_s (B, M, D) on the device;
        test_wave_x (B, L) and test_wave_s (B, M, L) on the CPU.
    """

    #: Test mixtures whose spectrograms a run keeps in examples.npz (32768 values each: keep it small).
    n_examples = 2

    spec: SpectrogramSpec
    train: NoteBank
    test: NoteBank
    train_waves: torch.Tensor
    test_x: torch.Tensor
    test_s: torch.Tensor
    test_wave_x: torch.Tensor
    test_wave_s: torch.Tensor
    test_notes: torch.Tensor  # (B, M) indices into ``test``
    test_gains: torch.Tensor  # (B, M)
    test_scale: torch.Tensor  # (B,) each test mixture's normalisation factor (normalize_by_mixture)
    n_digits: int = 2
    level_db: tuple[float, float] = LEVEL_DB
    name: str = "audio"
    info: dict = field(default_factory=dict)

    @property
    def input_dim(self) -> int:
        return self.spec.input_dim

    @classmethod
    def build(cls, config, device="cpu", source: str | None = None, bank: NoteBank | None = None) -> "AudioTask":
        """The task of a :class:`~bssvae.config.TrainConfig`: its geometry follows ``config.model.input_dim``.

        Uses ``config.n_digits`` (M), ``config.n_test``, ``config.test_seed`` and
        ``config.max_train_images`` (for audio: at most that many training notes, taken evenly
        across instruments).

        Args:
            config: the run's configuration.
            device: where training waveforms and test spectrograms live.
            source: ``soundfont`` (default) or ``nsynth``; default ``$BSSVAE_AUDIO_SOURCE``.
            bank: a prepared note bank (tests), split by pitch like any other.
        """
        spec = spectrogram_spec(config.model.input_dim)
        if bank is None:
            source = source or os.environ.get("BSSVAE_AUDIO_SOURCE", "soundfont")
            bank = load_notes(spec, source)
        if bank.sample_rate != spec.sample_rate or bank.n_samples != spec.n_samples:
            raise DataError(f"bank: notes of {bank.n_samples} samples at {bank.sample_rate} Hz do not fit the "
                            f"{spec.n_samples} samples at {spec.sample_rate} Hz of input_dim {spec.input_dim}")
        train, test = bank.split()
        if config.max_train_images is not None:
            train = train.balanced_subset(config.max_train_images)
        return cls.from_banks(spec, train, test, n_sources=config.n_digits, n_test=config.n_test,
                              test_seed=config.test_seed, device=device)

    @classmethod
    def from_banks(cls, spec: SpectrogramSpec, train: NoteBank, test: NoteBank, n_sources: int = 2,
                   n_test: int = 500, test_seed: int = 0, device="cpu",
                   level_db: tuple[float, float] = LEVEL_DB) -> "AudioTask":
        """The task from explicit train and test note banks (already split)."""
        n_sources = check_int("n_digits", n_sources, minimum=1)
        n_test = check_int("n_test", n_test, minimum=1)
        for name, bank in (("train", train), ("test", test)):
            if len(bank) == 0:
                raise DataError(f"{name}: no notes")
            if bank.n_samples != spec.n_samples:
                raise DataError(f"{name}: notes of {bank.n_samples} samples, expected {spec.n_samples}")
        if len(train) < n_sources:
            raise BssvaeError(f"n_digits: {n_sources} sources per mixture need at least {n_sources} training notes")
        device = torch.device(device)
        idx, gains = draw_test_mixtures(test, n_test, n_sources, test_seed, level_db)
        wave_s = torch.from_numpy(test.waveforms)[idx] * gains.unsqueeze(-1)  # (B, M, L)
        wave_x = wave_s.sum(dim=1)
        test_x, test_s, test_scale = normalize_by_mixture(magnitude(wave_x, spec), magnitude(wave_s, spec))
        info = {"source": train.source, "spectrogram": spec.to_dict(), "train_notes": len(train),
                "test_notes": len(test), "train_counts": train.counts(), "test_counts": test.counts()}
        return cls(spec, train, test, torch.from_numpy(train.waveforms).to(device), test_x.to(device),
                   test_s.to(device), wave_x, wave_s, idx, gains, test_scale, n_sources, tuple(level_db), info=info)

    # ------------------------------------------------------------------ training

    @property
    def mixtures_per_epoch(self) -> int:
        return max(1, len(self.train) // self.n_digits)

    def mix(self, notes: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """Mixture spectrograms of training notes, computed on the device.

        Shape: notes (B, M) indices, gains (B, M) -> x (B, D).
        """
        dev = self.train_waves.device
        waves = self.train_waves[notes.to(dev)] * gains.to(dev).unsqueeze(-1)  # (B, M, L)
        return normalize_by_mixture(magnitude(waves.sum(dim=1), self.spec))[0]

    def epoch_batches(self, generator: torch.Generator, batch_size: int) -> Iterator[torch.Tensor]:
        """Yield one epoch of freshly drawn training mixtures, on the device.

        Shape: yields x (batch_size, D) (a trailing remainder is dropped; an epoch smaller than a
        batch yields one smaller batch).
        """
        n = self.mixtures_per_epoch
        idx, gains = draw_mixtures(self.train, n, self.n_digits, generator, self.level_db)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            yield self.mix(idx[start:start + batch_size], gains[start:start + batch_size])

    # ------------------------------------------------------------------ evaluation

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed test set: mixtures x (B, D) and true source magnitudes s (B, M, D)."""
        return self.test_x, self.test_s

    def _check_estimates(self, estimates) -> torch.Tensor:
        est = check_tensor("estimates", estimates, ndim=3, min_value=0.0)
        b = self.test_x.shape[0]
        if est.shape[0] != b or est.shape[2] != self.input_dim:
            raise BssvaeError(f"estimates: expected magnitudes (B={b}, K, D={self.input_dim}) for this test set, "
                              f"got {tuple(est.shape)}")
        return est

    def waveforms(self, estimates: torch.Tensor, items: slice | None = None) -> torch.Tensor:
        """Estimated magnitudes to waveforms with each test mixture's phase.

        Shape: estimates (B', K, D) for the test mixtures ``items`` (default all) -> (B', K, L).
        """
        items = slice(None) if items is None else items
        mix, scale = self.test_wave_x[items], self.test_scale[items]
        out = []
        for s in range(0, mix.shape[0], 64):
            est = estimates[s:s + 64].detach().cpu().float() * scale[s:s + 64, None, None]
            out.append(waveforms_from_magnitudes(est, mix[s:s + 64], self.spec))
        return torch.cat(out)

    def evaluate(self, estimates) -> AudioScores:
        """SI-SDR, SIR and SAR of estimated magnitudes (B, K, D) on the test set.

        Returns:
            :class:`~bssvae.audio.evaluation.AudioScores`; ``.summary()`` gives the results row's
            ``si_sdr``, ``sir``, ``sar`` and ``si_sdri`` (dB).
        """
        est = self._check_estimates(estimates)
        return bss_eval(self.waveforms(est), self.test_wave_s, self.test_wave_x)

    def describe_test(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Instrument names, pitches and levels (dB) of the first n test mixtures, each (n, M)."""
        idx = self.test_notes[:n].numpy()
        names = np.array(self.test.instrument_names)
        return {"instruments": names[self.test.instrument[idx]], "pitch": self.test.pitch[idx],
                "level_db": 20 * np.log10(self.test_gains[:n].numpy() / SOURCE_PEAK)}

    def examples(self, estimates_by_method: dict, n: int = 4) -> dict[str, np.ndarray]:
        """Waveforms of the first n test mixtures to listen to: mixture, truth and each method's estimates.

        Args:
            estimates_by_method: ``{method: magnitudes (B, K, D)}`` for the whole test set (or at
                least its first n mixtures), e.g. ``{"vae": s_hat, "vaem": s_check}``.
            n: how many mixtures.

        Returns:
            ``sample_rate`` (scalar), ``x`` (n, L), ``s`` (n, M, L), one (n, K, L) array per method,
            float32; and ``instruments`` (n, M) str, ``pitch`` (n, M), ``level_db`` (n, M).
        """
        n = min(check_int("n", n, minimum=1), self.test_x.shape[0])
        out = {"sample_rate": np.array(self.spec.sample_rate), "x": self.test_wave_x[:n].numpy(),
               "s": self.test_wave_s[:n].numpy()}
        for method, est in estimates_by_method.items():
            if method in out:
                raise BssvaeError(f"estimates_by_method: {method!r} is a reserved key")
            est = check_tensor(f"estimates_by_method[{method!r}]", est, ndim=3, min_value=0.0)
            if est.shape[0] < n or est.shape[2] != self.input_dim:
                raise BssvaeError(f"estimates_by_method[{method!r}]: expected (>= {n}, K, {self.input_dim}), "
                                  f"got {tuple(est.shape)}")
            out[method] = self.waveforms(est[:n], slice(0, n)).numpy().astype(np.float32)
        out.update(self.describe_test(n))
        return out


def separate_waveform(model, waveform, sample_rate: int, mask: bool = True) -> torch.Tensor:
    """Separate a recording with a trained audio model: waveform in, K source waveforms out.

    The recording is made mono, resampled, cropped or padded to the model's geometry
    (:func:`~bssvae.audio.spectrogram.prepare_waveform`); its spectrogram is normalised like the
    training mixtures', and the estimates (VAEM if ``mask``), scaled back, get the mixture's
    phase. Silent input gives silent, finite output.

    Shape: waveform (samples,) or (samples, channels) -> (K, L).
    """
    from .spectrogram import prepare_waveform

    spec = spectrogram_spec(model.config.input_dim)
    x_wave = prepare_waveform(waveform, sample_rate, spec)
    x, _, factor = normalize_by_mixture(magnitude(x_wave, spec).unsqueeze(0))
    est = model.separate(x, mask=mask) * factor
    return waveforms_from_magnitudes(est, x_wave.unsqueeze(0), spec)[0]


__all__ = ["AudioTask", "AudioScores", "draw_mixtures", "draw_test_mixtures", "load_notes", "normalize_by_mixture",
           "separate_waveform",
           "INSTRUMENTS", "LEVEL_DB", "SOURCE_PEAK"]
