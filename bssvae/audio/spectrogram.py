"""Magnitude spectrograms: the STFT geometry of each input size, its inverse with the mixture's phase.

The model sees a mixture as a flattened magnitude spectrogram of ``F x T`` values (frequency
major: index ``f * T + t``). Table I gives the paper's input size, 32768, and nothing else about
the STFT; we factor it as 512 frequency bins x 64 frames:

- **16 kHz** sample rate: NSynth's native rate; it keeps everything below 8 kHz, where nearly all
  the energy of the orchestral instruments we use lies.
- **n_fft = 1024** (64 ms Hann window, 15.6 Hz between bins): two partials stay resolved as
  separate peaks when they are more than the half-width of the Hann main lobe apart (2 bins; 4 in
  all), i.e. for fundamentals above 31.25 Hz. Every instrument of the bank but the piano starts at
  B♭1 (bassoon, 58 Hz: 3.7 bins between harmonics) or higher. The piano goes down to A0 (27.5 Hz):
  the harmonics of its three lowest notes, A0, A♯0 and B0 (1.76 to 1.98 bins apart; all three are
  training notes), are *not* resolved, and from C1 (32.7 Hz, 2.1 bins) to B1 they are resolved by
  this criterion but their main lobes overlap (fewer than 4 bins apart). The Nyquist bin (513th)
  is dropped: 512 bins, a power of 2.
- **hop = 256** (75 % overlap, 16 ms): the usual overlap for a Hann window.
- **T = 64 frames** (``center=True``): 63 hops = 16128 samples = 1.008 s of each note, its attack
  and sustain. 512 x 64 = 32768 = 2^15, Table I's size.

The smaller geometries (:data:`SPECTROGRAMS`) both use an 8 kHz sample rate, half the bandwidth.
The ``cpu`` profile's (8192 = 256 x 32) keeps the 64 ms window (n_fft = 512, 15.6 Hz bins) and
0.99 s of sound, with half the frame rate (hop 256 = 32 ms). The ``smoke`` profile's (1024 = 64 x
16) does not: n_fft = 128 is a 16 ms window with 62.5 Hz between bins, so the harmonics of every
note up to B2 (123 Hz; 66 of the bank's 404 notes) are less than 2 bins apart and not resolved, and its 15 hops of 64
samples cover 0.12 s. It exists for tests and says nothing about separation.

**Normalisation.** Magnitudes are divided by the window's sum, ``sum(w) = n_fft / 2``. Since
``|X(f, t)| <= max|x| * sum(w)``, a waveform whose peak is at most 1 has all its normalised
magnitudes in [0, 1], the range of the decoder's sigmoid. Sources and mixture share this one
scale, so the mixture's magnitude is the sum of the sources' magnitudes wherever their partials
do not share a bin (the model's assumption x = sum_k s_k). The task then rescales each mixture,
and its sources with it, by the mixture's largest value
(:func:`bssvae.audio.task.normalize_by_mixture`).

**Back to waveforms.** Estimated magnitudes are combined with the mixture's phase and inverted by
``torch.istft`` (the standard practice for magnitude masking; the model estimates no phase).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import BssvaeError, check_int, check_tensor

@dataclass(frozen=True)
class SpectrogramSpec:
    """An STFT geometry: sample rate, window, hop, and number of frames.

    Attributes:
        sample_rate: Hz.
        n_fft: window length in samples (Hann, periodic); ``n_fft // 2`` bins are kept.
        hop_length: samples between frames.
        n_frames: T, the frames per spectrogram (``center=True``).
    """

    sample_rate: int
    n_fft: int
    hop_length: int
    n_frames: int

    def __post_init__(self):
        for name in ("sample_rate", "n_fft", "hop_length", "n_frames"):
            check_int(name, getattr(self, name), minimum=1)
        if self.n_fft % 2 or self.hop_length > self.n_fft // 2:
            raise BssvaeError(f"n_fft, hop_length: expected an even n_fft and hop_length <= n_fft / 2 (so the "
                              f"Hann windows overlap-add to a constant), got {self.n_fft}, {self.hop_length}")

    @property
    def n_bins(self) -> int:
        """F, the frequency bins kept (DC to just below Nyquist)."""
        return self.n_fft // 2

    @property
    def input_dim(self) -> int:
        """D = F x T, the model's input size."""
        return self.n_bins * self.n_frames

    @property
    def n_samples(self) -> int:
        """L, the samples of audio one spectrogram covers: (T - 1) hops."""
        return (self.n_frames - 1) * self.hop_length

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def window_sum(self) -> float:
        """sum(w) of the periodic Hann window: the magnitude normalisation, n_fft / 2."""
        return self.n_fft / 2

    def window(self, device=None, dtype=torch.float32) -> torch.Tensor:
        return torch.hann_window(self.n_fft, periodic=True, device=device, dtype=dtype)

    def to_dict(self) -> dict:
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "n_frames": self.n_frames}


#: STFT geometry for each supported model input size (``ModelConfig.input_dim``).
SPECTROGRAMS: dict[int, SpectrogramSpec] = {
    # paper: Table I's 32768 = 512 bins x 64 frames at 16 kHz, 1.008 s (module docstring).
    32768: SpectrogramSpec(sample_rate=16000, n_fft=1024, hop_length=256, n_frames=64),
    # cpu: 8192 = 256 x 32 at 8 kHz; the same 64 ms window and 0.99 s, half the bandwidth and frame rate.
    8192: SpectrogramSpec(sample_rate=8000, n_fft=512, hop_length=256, n_frames=32),
    # smoke: 1024 = 64 x 16 at 8 kHz, 0.12 s: seconds on a CPU, for tests only.
    1024: SpectrogramSpec(sample_rate=8000, n_fft=128, hop_length=64, n_frames=16),
}


def spectrogram_spec(input_dim: int) -> SpectrogramSpec:
    """The STFT geometry for a model input size.

    Raises:
        BssvaeError: for an input size with no geometry in :data:`SPECTROGRAMS`.
    """
    input_dim = check_int("input_dim", input_dim, minimum=1)
    if input_dim not in SPECTROGRAMS:
        raise BssvaeError(f"model.input_dim: the audio task supports spectrograms of {sorted(SPECTROGRAMS)} "
                          f"values (see bssvae.audio.SPECTROGRAMS), got {input_dim}")
    return SPECTROGRAMS[input_dim]


def _as_waveforms(name: str, waveforms, spec: SpectrogramSpec) -> torch.Tensor:
    if not isinstance(waveforms, torch.Tensor):
        waveforms = check_tensor(name, waveforms)
    if waveforms.ndim < 1 or waveforms.shape[-1] != spec.n_samples:
        raise BssvaeError(f"{name}: expected waveforms of {spec.n_samples} samples in the last dimension "
                          f"({spec.duration:.3f} s at {spec.sample_rate} Hz), got shape {tuple(waveforms.shape)}")
    return waveforms if torch.is_floating_point(waveforms) else waveforms.float()


def stft(waveforms: torch.Tensor, spec: SpectrogramSpec) -> torch.Tensor:
    """Complex STFT of waveforms (Hann window, ``center=True``, reflect padding), all bins.

    Shape: waveforms (..., L) -> (..., n_fft / 2 + 1, T), complex.
    """
    waveforms = _as_waveforms("waveforms", waveforms, spec)
    lead = waveforms.shape[:-1]
    flat = waveforms.reshape(-1, spec.n_samples)
    out = torch.stft(flat, spec.n_fft, spec.hop_length, window=spec.window(flat.device, flat.dtype),
                     center=True, return_complex=True)
    return out.reshape(*lead, *out.shape[-2:])


def magnitude(waveforms: torch.Tensor, spec: SpectrogramSpec) -> torch.Tensor:
    """Normalised magnitude spectrograms, flattened: the model's inputs and sources.

    ``|STFT|`` without the Nyquist bin, divided by ``sum(w)`` (values in [0, 1] for waveforms of
    peak <= 1; module docstring), flattened frequency-major.

    Shape: waveforms (..., L) -> (..., D) with D = F x T.
    """
    mag = stft(waveforms, spec).abs()[..., : spec.n_bins, :] / spec.window_sum
    return mag.reshape(*mag.shape[:-2], spec.input_dim)


def waveforms_from_magnitudes(magnitudes: torch.Tensor, mixture: torch.Tensor,
                              spec: SpectrogramSpec) -> torch.Tensor:
    """Estimated magnitudes to waveforms, with the mixture's phase (inverse STFT).

    The Nyquist bin, absent from the magnitudes, is set to zero.

    Args:
        magnitudes: normalised magnitudes (as :func:`magnitude` returns), one row per estimate.
        mixture: the mixture waveforms whose phase is used.

    Shape: magnitudes (B, K, D), mixture (B, L) -> (B, K, L).
    """
    magnitudes = check_tensor("magnitudes", magnitudes, ndim=3, last_dim=spec.input_dim, min_value=0.0)
    mixture = _as_waveforms("mixture", mixture, spec)
    if mixture.ndim != 2 or mixture.shape[0] != magnitudes.shape[0]:
        raise BssvaeError(f"mixture: expected shape ({magnitudes.shape[0]}, {spec.n_samples}) to match "
                          f"magnitudes {tuple(magnitudes.shape)}, got {tuple(mixture.shape)}")
    b, k, _ = magnitudes.shape
    phase = torch.polar(torch.ones((), dtype=mixture.dtype, device=mixture.device),
                        stft(mixture, spec).angle())  # (B, F + 1, T), unit modulus
    mag = magnitudes.to(device=mixture.device, dtype=mixture.dtype).reshape(b, k, spec.n_bins, spec.n_frames)
    mag = torch.nn.functional.pad(mag, (0, 0, 0, 1)) * spec.window_sum  # Nyquist bin = 0
    spec_c = (mag * phase.unsqueeze(1)).reshape(b * k, spec.n_bins + 1, spec.n_frames)
    wave = torch.istft(spec_c, spec.n_fft, spec.hop_length, window=spec.window(mixture.device, mixture.dtype),
                       center=True, length=spec.n_samples)
    return wave.reshape(b, k, spec.n_samples)


def prepare_waveform(waveform, sample_rate: int, spec: SpectrogramSpec) -> torch.Tensor:
    """Bring any recording to the geometry's format: mono, the right sample rate and length.

    - Two (or more) channels are **downmixed** by averaging them. A 2-D array is read as
      (samples, channels), the layout ``soundfile.read`` returns; a (channels, samples) array is
      refused with a message saying to transpose it.
    - Another sample rate is **resampled** with ``librosa.resample`` (soxr, high quality).
    - Longer audio is cropped to its first ``spec.n_samples`` samples; shorter audio is padded with
      silence at the end.
    - The level is left as it is (the task normalises each spectrogram by its largest value), and
      silent audio is accepted and stays silent.

    Args:
        waveform: numpy array or tensor, (samples,) or (samples, channels), finite.
        sample_rate: its sample rate in Hz.
        spec: the target geometry.

    Returns:
        float32 tensor (L,), L = ``spec.n_samples``.

    Raises:
        BssvaeError: for non-numeric, non-finite, empty or wrongly laid out audio, or a bad rate.
    """
    sample_rate = check_int("sample_rate", sample_rate, minimum=1)
    x = check_tensor("waveform", waveform, ndim=(1, 2))
    if x.ndim == 2:
        if x.shape[1] > x.shape[0]:
            raise BssvaeError(f"waveform: expected (samples, channels) as soundfile.read returns, got shape "
                              f"{tuple(x.shape)} (more channels than samples); pass waveform.T")
        x = x.mean(dim=1)  # downmix
    x = x.detach().cpu().double().numpy()
    if sample_rate != spec.sample_rate:
        import librosa

        x = librosa.resample(x, orig_sr=sample_rate, target_sr=spec.sample_rate, res_type="soxr_hq")
    out = np.zeros(spec.n_samples, dtype=np.float64)
    n = min(len(x), spec.n_samples)
    out[:n] = x[:n]
    return torch.from_numpy(out.astype(np.float32))


def load_audio(path, spec: SpectrogramSpec) -> torch.Tensor:
    """Read an audio file (any format ``soundfile`` reads) and :func:`prepare_waveform` it.

    Shape: -> (L,).

    Raises:
        DataError: if the file cannot be read.
    """
    import soundfile as sf

    from ..errors import DataError

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, OSError, sf.LibsndfileError) as e:
        raise DataError(f"{path}: unreadable audio file ({e})") from e
    return prepare_waveform(data, rate, spec)
