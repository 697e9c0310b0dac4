"""Audio: Table III's experiment on open instrument notes (MUMS, the paper's data, is commercial).

One module per concept:

- :mod:`bssvae.audio.spectrogram` - STFT geometry per input size (32768 = 512 bins x 64 frames at
  16 kHz), normalised magnitudes, inversion with the mixture's phase, input preparation
- :mod:`bssvae.audio.notes` - the note bank, rendered offline from a GM SoundFont; pitch split
- :mod:`bssvae.audio.nsynth` - NSynth download (MD5-checked), reader and filter
- :mod:`bssvae.audio.evaluation` - permutation-matched SI-SDR / SIR / SAR (fast_bss_eval)
- :mod:`bssvae.audio.task` - mixtures and :class:`AudioTask`, the task :mod:`bssvae.train` trains on
"""
from .evaluation import CLAMP_DB, AudioScores, bss_eval, match_waveforms
from .notes import INSTRUMENTS, TEST_PITCH_PERIOD, Instrument, NoteBank, render_notes, soundfont_notes, soundfont_path
from .nsynth import NSYNTH_FAMILIES, NSYNTH_MD5, download_nsynth, nsynth_notes, read_nsynth
from .spectrogram import (SPECTROGRAMS, SpectrogramSpec, load_audio, magnitude, prepare_waveform, spectrogram_spec,
                          stft, waveforms_from_magnitudes)
from .task import (LEVEL_DB, SOURCE_PEAK, AudioTask, draw_mixtures, draw_test_mixtures, load_notes,
                   normalize_by_mixture, separate_waveform)

__all__ = [
    "AudioScores", "AudioTask", "CLAMP_DB", "INSTRUMENTS", "Instrument", "LEVEL_DB", "NSYNTH_FAMILIES",
    "NSYNTH_MD5", "NoteBank", "SOURCE_PEAK", "SPECTROGRAMS", "SpectrogramSpec", "TEST_PITCH_PERIOD", "bss_eval",
    "download_nsynth", "draw_mixtures", "draw_test_mixtures", "load_audio", "load_notes", "magnitude",
    "match_waveforms", "normalize_by_mixture", "nsynth_notes", "prepare_waveform", "read_nsynth", "render_notes", "separate_waveform",
    "soundfont_notes", "soundfont_path", "spectrogram_spec", "stft", "waveforms_from_magnitudes",
]
