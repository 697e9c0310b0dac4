"""Isolated instrument notes: a bank of waveforms, rendered offline from a General-MIDI SoundFont.

MUMS, the paper's data, is a commercial library. The default stand-in is rendered here, offline,
by TinySoundFont from TimGM6mb.sf2, the GM SoundFont that ships inside the ``pretty_midi``
package: nine orchestral instruments (:data:`INSTRUMENTS`), every semitone of each one's usual
range. Each note is held for 75 % of the excerpt and then released, rendered at 48 kHz, resampled
(soxr) to the spectrogram's rate, summed to mono and peak-normalised to 1.

**Velocities.** TimGM6mb has one sample layer per instrument and TinySoundFont maps MIDI velocity
to gain only: we measured that renders at velocities 40 and 120, once peak-normalised, differ by
less than 1e-6. So notes are rendered at one velocity (100) and loudness is varied where it
matters, when notes are mixed (a random level per source, :mod:`bssvae.audio.task`).

**Split.** Test notes are held out by pitch: every MIDI pitch divisible by 4 (C, E and G♯ of every
octave, a quarter of the pitches) is a test pitch, for every instrument; all other pitches train.
Test notes are therefore never heard in training, while each test pitch lies a semitone or two
from training pitches of the same instrument.

The split has a consequence for the test *pairs*: since 4 divides 12, any two test pitches are 0,
4 or 8 semitones apart modulo 12, so a test pair is a unison or octave(s), a major third or a minor
sixth (give or take octaves), and nothing else. About a third of the ``paper`` profile's 1,000
test pairs are unisons or octaves (33.6 %; unisons alone 6.5 %), against 11.1 % of training pairs,
and harmonics coincide most in those pairs: the oracle masks score 12 to 13 dB lower on them than on the others
(``results/ablations/audio-test-intervals``). The committed runs were made with this split, so it
stays; a split meant to test all intervals would hold out a random set of pitches (a period
coprime to 12, such as 5, covers every class modulo 12 but makes octaves rare: they need 60
semitones).

The rendered bank is cached once in ``cache_dir()/audio/`` as an ``.npz`` named by a hash of the
rendering parameters, the SoundFont's sha256 and the renderer's version, written atomically.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BssvaeError, DataError, check_int, check_real

#: Peak below which a rendered or loaded note counts as silent and is left out.
SILENCE_PEAK = 1e-4
#: A pitch is a test pitch when ``pitch % TEST_PITCH_PERIOD == 0``. 4 divides 12: test pairs are only
#: unisons/octaves, thirds or sixths modulo 12 (module docstring).
TEST_PITCH_PERIOD = 4
#: Bumped when the rendering procedure changes, so old caches are not reused.
RENDER_VERSION = 1


@dataclass(frozen=True)
class Instrument:
    """A General-MIDI instrument and the MIDI pitches (inclusive) it is rendered over.

    ``program`` is 0-based (GM program 71, Bassoon, is 70 here).
    """

    name: str
    program: int
    low: int
    high: int

    @property
    def pitches(self) -> range:
        return range(self.low, self.high + 1)


#: The instruments rendered by default, with their usual (sounding) ranges.
INSTRUMENTS: dict[str, Instrument] = {i.name: i for i in (
    Instrument("bassoon", 70, 34, 75),    # B♭1 - E♭5
    Instrument("violin", 40, 55, 100),    # G3 - E7
    Instrument("flute", 73, 60, 96),      # C4 - C7
    Instrument("clarinet", 71, 50, 91),   # D3 - G6 (B♭ clarinet, sounding)
    Instrument("oboe", 68, 58, 91),       # B♭3 - G6
    Instrument("trumpet", 56, 54, 84),    # F♯3 - C6
    Instrument("horn", 60, 35, 77),       # B1 - F5
    Instrument("cello", 42, 36, 76),      # C2 - E5
    Instrument("piano", 0, 21, 108),      # A0 - C8
)}


@dataclass
class NoteBank:
    """Isolated notes, one waveform each, with their instrument and pitch.

    Attributes (N notes, L samples):
        waveforms: float32 (N, L), each peak-normalised to 1.
        instrument: int64 (N,), index into ``instrument_names``.
        pitch: int64 (N,), MIDI pitch.
        velocity: int64 (N,), MIDI velocity (NSynth: 25 to 127).
        instrument_names: the instruments (or NSynth families) the indices refer to.
        sample_rate: Hz.
        source: where the notes come from (``soundfont:TimGM6mb`` or ``nsynth``).
        meta: how they were made (parameters, skipped notes).
    """

    waveforms: np.ndarray
    instrument: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    instrument_names: tuple[str, ...]
    sample_rate: int
    source: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.waveforms = np.asarray(self.waveforms, dtype=np.float32)
        if self.waveforms.ndim != 2:
            raise BssvaeError(f"waveforms: expected (N, L), got shape {self.waveforms.shape}")
        n = self.waveforms.shape[0]
        for name in ("instrument", "pitch", "velocity"):
            v = np.asarray(getattr(self, name), dtype=np.int64).reshape(-1)
            if v.shape != (n,):
                raise BssvaeError(f"{name}: expected {n} values (one per note), got {v.shape}")
            setattr(self, name, v)
        self.instrument_names = tuple(str(s) for s in self.instrument_names)
        if n and (self.instrument.min() < 0 or self.instrument.max() >= len(self.instrument_names)):
            raise BssvaeError("instrument: indices outside instrument_names")

    def __len__(self) -> int:
        return self.waveforms.shape[0]

    @property
    def n_samples(self) -> int:
        return self.waveforms.shape[1]

    def select(self, mask) -> "NoteBank":
        """The notes where ``mask`` is true (or at the given indices)."""
        return NoteBank(self.waveforms[mask], self.instrument[mask], self.pitch[mask], self.velocity[mask],
                        self.instrument_names, self.sample_rate, self.source, dict(self.meta))

    def split(self, period: int = TEST_PITCH_PERIOD) -> tuple["NoteBank", "NoteBank"]:
        """Hold out pitches: (train, test), test = notes whose ``pitch % period == 0``."""
        period = check_int("period", period, minimum=2)
        test = self.pitch % period == 0
        return self.select(~test), self.select(test)

    def balanced_subset(self, n: int) -> "NoteBank":
        """At most ``n`` notes, taken in turn from each instrument (lowest pitches first)."""
        n = check_int("n", n, minimum=1)
        if n >= len(self):
            return self
        rank = np.zeros(len(self), dtype=np.int64)
        for i in np.unique(self.instrument):
            idx = np.flatnonzero(self.instrument == i)
            rank[idx[np.argsort(self.pitch[idx], kind="stable")]] = np.arange(len(idx))
        order = np.lexsort((self.instrument, rank))[:n]
        return self.select(np.sort(order))

    def counts(self) -> dict[str, int]:
        """Notes per instrument."""
        return {name: int((self.instrument == i).sum()) for i, name in enumerate(self.instrument_names)}

    # ------------------------------------------------------------------ cache

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, waveforms=self.waveforms, instrument=self.instrument, pitch=self.pitch,
                 velocity=self.velocity, instrument_names=np.array(self.instrument_names),
                 sample_rate=np.array(self.sample_rate), source=np.array(self.source),
                 meta=np.array(json.dumps(self.meta, sort_keys=True)))
        return buf.getvalue()

    def save(self, path: Path) -> Path:
        """Write atomically (a partial file is never read as a valid cache)."""
        from ..results import atomic_write_bytes

        atomic_write_bytes(Path(path), self.to_bytes())
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> "NoteBank":
        """Read a bank written by :meth:`save`.

        Raises:
            DataError: for a missing, truncated or foreign file.
        """
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                return cls(z["waveforms"], z["instrument"], z["pitch"], z["velocity"],
                           tuple(z["instrument_names"].tolist()), int(z["sample_rate"]), str(z["source"]),
                           json.loads(str(z["meta"])))
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: not a readable note bank ({type(e).__name__}: {e})") from e


def concatenate(banks: list[NoteBank]) -> NoteBank:
    """One bank from several with the same sample rate and length (instrument names are merged)."""
    if not banks:
        raise BssvaeError("banks: expected at least one note bank")
    names = tuple(sorted({n for b in banks for n in b.instrument_names}))
    if len({(b.sample_rate, b.n_samples) for b in banks}) != 1:
        raise BssvaeError("banks: expected the same sample rate and note length in every bank")
    remap = [np.array([names.index(n) for n in b.instrument_names], dtype=np.int64) for b in banks]
    return NoteBank(np.concatenate([b.waveforms for b in banks]),
                    np.concatenate([r[b.instrument] for r, b in zip(remap, banks)]),
                    np.concatenate([b.pitch for b in banks]), np.concatenate([b.velocity for b in banks]),
                    names, banks[0].sample_rate, banks[0].source,
                    {"parts": [b.meta for b in banks]})


def peak_normalize(wave: np.ndarray) -> np.ndarray | None:
    """``wave / max|wave|``, or None for a silent note (peak below :data:`SILENCE_PEAK`)."""
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if not np.isfinite(peak) or peak < SILENCE_PEAK:
        return None
    return (wave / peak).astype(np.float32)


# ---------------------------------------------------------------------- SoundFont rendering


def soundfont_path() -> Path:
    """TimGM6mb.sf2, the GM SoundFont inside the installed ``pretty_midi`` package (not imported).

    Raises:
        DataError: if ``pretty_midi`` or its SoundFont is missing.
    """
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the GM SoundFont comes with pretty_midi: pip install --no-deps pretty-midi")
    path = Path(list(spec.submodule_search_locations)[0]) / "TimGM6mb.sf2"
    if not path.exists():
        raise DataError(f"{path}: TimGM6mb.sf2 is missing from the pretty_midi installation")
    return path


def _resolve_instruments(instruments) -> list[Instrument]:
    out = []
    for item in instruments:
        if isinstance(item, Instrument):
            out.append(item)
        elif item in INSTRUMENTS:
            out.append(INSTRUMENTS[item])
        else:
            raise BssvaeError(f"instruments: expected names among {sorted(INSTRUMENTS)} or Instrument "
                              f"objects, got {item!r}")
    if not out or len({i.name for i in out}) != len(out):
        raise BssvaeError(f"instruments: expected distinct instruments, got {[i.name for i in out]}")
    return out


def render_notes(sample_rate: int, n_samples: int, instruments=tuple(INSTRUMENTS), velocity: int = 100,
                 hold_fraction: float = 0.75, render_rate: int = 48000, soundfont: Path | None = None,
                 pitch_stride: int = 1) -> NoteBank:
    """Render isolated notes with TinySoundFont (no cache; see :func:`soundfont_notes`).

    Each note starts at sample 0, is held for ``hold_fraction`` of the excerpt, then released;
    it is rendered at ``render_rate``, downmixed, resampled to ``sample_rate`` (librosa/soxr) and
    peak-normalised. Notes the SoundFont cannot play, or that come out silent, are skipped and
    listed in ``meta["skipped"]``.

    Args:
        sample_rate: Hz of the returned waveforms.
        n_samples: L, samples per note.
        instruments: names in :data:`INSTRUMENTS` (or :class:`Instrument` objects).
        velocity: MIDI velocity (gain only with TimGM6mb; module docstring).
        pitch_stride: keep every n-th pitch of each range (1: all).

    Returns:
        a :class:`NoteBank` with waveforms (N, n_samples).
    """
    import librosa
    import tinysoundfont

    sample_rate = check_int("sample_rate", sample_rate, minimum=1)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    velocity = check_int("velocity", velocity, minimum=1)
    render_rate = check_int("render_rate", render_rate, minimum=1)
    pitch_stride = check_int("pitch_stride", pitch_stride, minimum=1)
    check_real("hold_fraction", hold_fraction, expected="a number in (0, 1]", low=0, low_open=True, high=1)
    chosen = _resolve_instruments(instruments)
    sf_path = Path(soundfont) if soundfont is not None else soundfont_path()
    n_render = int(np.ceil(n_samples * render_rate / sample_rate)) + 64  # margin for the resampler
    n_hold = int(round(hold_fraction * n_samples * render_rate / sample_rate))
    waves, inst, pitches, skipped = [], [], [], []
    for i, instrument in enumerate(chosen):
        synth = tinysoundfont.Synth(samplerate=render_rate)  # a fresh synth: notes never share state
        sfid = synth.sfload(str(sf_path))
        synth.program_select(0, sfid, 0, instrument.program)
        for pitch in instrument.pitches[::pitch_stride]:
            if not synth.noteon(0, pitch, velocity):
                skipped.append(f"{instrument.name}:{pitch}:unplayable")
                continue
            head = np.frombuffer(synth.generate(n_hold), dtype=np.float32)
            synth.noteoff(0, pitch)
            tail = np.frombuffer(synth.generate(n_render - n_hold), dtype=np.float32)
            synth.sounds_off()
            synth.generate(render_rate // 10)  # let the quick release finish before the next note
            mono = np.concatenate([head, tail]).reshape(-1, 2).mean(axis=1).astype(np.float64)
            if render_rate != sample_rate:
                mono = librosa.resample(mono, orig_sr=render_rate, target_sr=sample_rate, res_type="soxr_hq")
            wave = peak_normalize(mono[:n_samples])
            if wave is None or len(wave) < n_samples:
                skipped.append(f"{instrument.name}:{pitch}:silent")
                continue
            waves.append(wave)
            inst.append(i)
            pitches.append(pitch)
    if not waves:
        raise DataError(f"{sf_path}: no audible note was rendered for {[c.name for c in chosen]}")
    meta = {"soundfont": sf_path.name, "velocity": velocity, "hold_fraction": hold_fraction,
            "render_rate": render_rate, "skipped": skipped,
            "instruments": {c.name: [c.program, c.low, c.high] for c in chosen}}
    return NoteBank(np.stack(waves), np.array(inst), np.array(pitches), np.full(len(waves), velocity),
                    tuple(c.name for c in chosen), sample_rate, f"soundfont:{sf_path.stem}", meta)


def _sha256(path: Path) -> str:
    from ..data import sha256_file

    return sha256_file(path)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def audio_cache_dir() -> Path:
    """``cache_dir()/audio``: rendered and converted note banks."""
    from ..data import cache_dir

    return cache_dir() / "audio"


def cache_key(params: dict) -> str:
    """A short hash naming a cache file after everything that determines its content."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_cached_bank(path: Path, params: dict) -> "NoteBank | None":
    """A cached note bank if ``path`` holds one made with exactly ``params``; None if absent or
    stale, and None for a corrupt file (the caller renders or converts again and overwrites it)."""
    if not path.exists():
        return None
    try:
        bank = NoteBank.load(path)
    except DataError:
        return None
    return bank if bank.meta.get("params") == json.loads(json.dumps(params)) else None


def soundfont_notes(sample_rate: int, n_samples: int, instruments=tuple(INSTRUMENTS), velocity: int = 100,
                    hold_fraction: float = 0.75, render_rate: int = 48000, pitch_stride: int = 1,
                    cache: bool = True, soundfont: Path | None = None) -> NoteBank:
    """The rendered note bank, from the cache or rendered once and cached (see :func:`render_notes`).

    The cache file, ``cache_dir()/audio/soundfont-<hash>.npz``, is named by a hash of every
    rendering parameter, the SoundFont's sha256 and the versions of TinySoundFont and soxr; its
    parameters are stored inside it and checked on reading. A corrupt file is re-rendered.
    """
    sf_path = Path(soundfont) if soundfont is not None else soundfont_path()
    chosen = _resolve_instruments(instruments)
    params = {"kind": "soundfont", "render_version": RENDER_VERSION, "sample_rate": int(sample_rate),
              "n_samples": int(n_samples), "instruments": [[c.name, c.program, c.low, c.high] for c in chosen],
              "velocity": int(velocity), "hold_fraction": float(hold_fraction), "render_rate": int(render_rate),
              "pitch_stride": int(pitch_stride), "soundfont_sha256": _sha256(sf_path),
              "tinysoundfont": _version("tinysoundfont"), "soxr": _version("soxr")}
    path = audio_cache_dir() / f"soundfont-{cache_key(params)}.npz"
    if cache and (bank := load_cached_bank(path, params)) is not None:
        return bank
    bank = render_notes(sample_rate, n_samples, chosen, velocity, hold_fraction, render_rate, sf_path,
                        pitch_stride)
    bank.meta["params"] = params
    if cache:
        bank.save(path)
    return bank
