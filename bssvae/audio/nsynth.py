"""NSynth (CC-BY 4.0): download, read its json/wav format, and filter it to acoustic orchestral notes.

NSynth (Engel et al., "Neural Audio Synthesis of Musical Notes with WaveNet Autoencoders",
ICML 2017) holds ~300k four-second notes at 16 kHz from ~1000 instruments,
published as three archives (``nsynth-{train,valid,test}.jsonwav.tar.gz``). Each extracts to::

    nsynth-<split>/examples.json     {note_str: {"pitch", "velocity", "instrument_family_str",
                                                 "instrument_source_str", "sample_rate", ...}}
    nsynth-<split>/audio/<note_str>.wav   16-bit PCM, mono, 16 kHz, 64000 samples

We keep the **acoustic** notes of the families that hold our SoundFont instruments
(:data:`NSYNTH_FAMILIES`: brass, flute, keyboard, reed, string) and put them through the same
pipeline as the rendered notes: the first ``n_samples`` samples (the attack and the start of the
3-second sustain), resampled if the spectrogram's rate is not 16 kHz, peak-normalised. NSynth
names no instrument finer than a family, so a mixture pairs notes of two different **families**.
The same pitch hold-out split applies.

Integrity: the archives are checked against the MD5 sums that the HEAR benchmark publishes for
them (hearbenchmark/hear-preprocess, ``hearpreprocess/tasks/nsynth_pitch.py``); their sha256 is
recorded in ``nsynth-manifest.json`` on first download, and a later download must match it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ..errors import BssvaeError, DataError, check_int
from .notes import NoteBank, audio_cache_dir, cache_key, concatenate, load_cached_bank, peak_normalize

NSYNTH_URL = "http://download.magenta.tensorflow.org/datasets/nsynth/nsynth-{split}.jsonwav.tar.gz"
#: MD5 of each archive as served (HEAR benchmark, hear-preprocess, tasks/nsynth_pitch.py).
NSYNTH_MD5 = {
    "train": "fde6665a93865503ba598b9fac388660",  # 23,815,298,079 bytes
    "valid": "87e94a00a19b6dbc99cf6d4c0c0cae87",
    "test": "5e6f8719bf7e16ad0a00d518b78af77d",
}
#: NSynth families that contain the SoundFont instruments (trumpet, horn / flute / piano /
#: bassoon, clarinet, oboe / violin, cello).
NSYNTH_FAMILIES = ("brass", "flute", "keyboard", "reed", "string")
NSYNTH_SAMPLE_RATE = 16000
#: Splits used for training by default: valid and test, pooled and split by pitch. (The train
#: archive is 23.8 GB; pass ``splits=("train", ...)`` to use it.)
DEFAULT_SPLITS = ("valid", "test")


def nsynth_root() -> Path:
    """Where NSynth archives are extracted: ``$BSSVAE_NSYNTH`` if set, else ``cache_dir()/nsynth``."""
    from ..data import cache_dir

    return Path(os.environ.get("BSSVAE_NSYNTH", cache_dir() / "nsynth")).expanduser()


def _check_split(split: str) -> str:
    if split not in NSYNTH_MD5:
        raise BssvaeError(f"split: expected one of {sorted(NSYNTH_MD5)}, got {split!r}")
    return split


def _hash_file(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def _read_manifest(root: Path) -> dict:
    path = root / "nsynth-manifest.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable manifest ({e}); delete it to start over") from e


def download_archive(url: str, dest: Path, md5: str, timeout: float = 60.0) -> tuple[str, str]:
    """Download ``url`` to ``dest`` atomically, checking its MD5; returns (md5, sha256).

    Raises:
        DataError: on a network failure or an MD5 mismatch (nothing is left at ``dest``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, length=1 << 22)
        got_md5, got_sha = _hash_file(Path(tmp))
        if got_md5 != md5:
            raise DataError(f"{url}: MD5 mismatch (expected {md5}, got {got_md5}); not kept")
        os.replace(tmp, dest)
        return got_md5, got_sha
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataError(f"could not download {url}: {e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_nsynth(split: str = "test", root: Path | None = None, url: str | None = None,
                    md5: str | None = None, keep_archive: bool = False) -> Path:
    """Fetch and extract one NSynth split; returns its directory ``root/nsynth-<split>``.

    Nothing is fetched when the directory already holds ``examples.json``. The archive is
    downloaded atomically and checked against :data:`NSYNTH_MD5`; its sha256 is recorded in
    ``root/nsynth-manifest.json`` on the first download and must match on any later one. It is
    extracted into a temporary directory that is renamed only when complete (with tarfile's
    ``data`` filter: no absolute paths, links or files outside the target).

    Args:
        split: ``train`` (23.8 GB), ``valid`` or ``test``.
        root: default :func:`nsynth_root`.
        url, md5: override the source (tests use a local ``file://`` archive).
        keep_archive: keep the ``.tar.gz`` after extraction.

    Raises:
        DataError: offline (``BSSVAE_OFFLINE=1``), on a failed download or a hash mismatch.
    """
    split = _check_split(split)
    root = Path(root) if root is not None else nsynth_root()
    target = root / f"nsynth-{split}"
    if (target / "examples.json").exists():
        return target
    url = url or NSYNTH_URL.format(split=split)
    md5 = md5 or NSYNTH_MD5[split]
    archive = root / Path(url).name
    if not archive.exists():
        if os.environ.get("BSSVAE_OFFLINE", "") not in ("", "0") and not url.startswith("file:"):
            raise DataError(f"NSynth {split} is not in {root} and BSSVAE_OFFLINE=1 forbids downloading {url}")
        _, sha = download_archive(url, archive, md5)
    else:
        got_md5, sha = _hash_file(archive)
        if got_md5 != md5:
            archive.unlink()
            raise DataError(f"{archive}: MD5 mismatch (expected {md5}, got {got_md5}); removed, run again")
    manifest = _read_manifest(root)
    known = manifest.get(split, {}).get("sha256")
    if known and known != sha:
        raise DataError(f"{archive}: sha256 {sha} differs from the first download's {known} "
                        f"(recorded in {root / 'nsynth-manifest.json'})")
    if not known:
        from ..results import atomic_write_json

        manifest[split] = {"url": url, "md5": md5, "sha256": sha, "bytes": archive.stat().st_size,
                           "downloaded_at": _dt.datetime.now(_dt.timezone.utc).isoformat()}
        atomic_write_json(root / "nsynth-manifest.json", manifest)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".nsynth-{split}."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.11.4: refuse unsafe members ourselves
                for m in tar.getmembers():
                    if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts or m.issym() or m.islnk():
                        raise DataError(f"{archive}: unsafe member {m.name!r}")
                tar.extractall(tmp)
        found = list(tmp.glob("**/examples.json"))
        if len(found) != 1:
            raise DataError(f"{archive}: expected one examples.json in the archive, found {len(found)}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(found[0].parent, target)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: could not extract ({e})") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return target


def read_examples(split_dir: Path) -> dict:
    """Parse ``examples.json`` of an extracted split, checking the fields we use.

    Raises:
        DataError: if it is missing or malformed.
    """
    path = Path(split_dir) / "examples.json"
    try:
        examples = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: missing or unreadable NSynth examples.json ({e})") from e
    need = ("pitch", "velocity", "instrument_family_str", "instrument_source_str")
    if not isinstance(examples, dict):
        raise DataError(f"{path}: expected a JSON object keyed by note name")
    for name, ex in examples.items():
        if not isinstance(ex, dict) or any(k not in ex for k in need):
            raise DataError(f"{path}: note {name!r} lacks one of the fields {list(need)}")
    return examples


def read_nsynth(split_dir: Path, sample_rate: int, n_samples: int, families=NSYNTH_FAMILIES,
                sources=("acoustic",), max_notes: int | None = None) -> NoteBank:
    """Load the notes of an extracted NSynth split that belong to ``families`` and ``sources``.

    Each note's wav is read with soundfile; a rate other than ``sample_rate`` is resampled
    (librosa, soxr), more than one channel is averaged, the first ``n_samples`` are kept (shorter
    files are padded with silence) and peak-normalised; silent notes are skipped (counted in
    ``meta["skipped_silent"]``). Notes are taken in sorted name order.

    Returns:
        a :class:`NoteBank` whose instruments are the NSynth families.

    Raises:
        DataError: for a missing directory, an unreadable wav, or no matching note.
    """
    import librosa
    import soundfile as sf

    split_dir = Path(split_dir)
    sample_rate = check_int("sample_rate", sample_rate, minimum=1)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    families = tuple(families)
    unknown = sorted(set(families) - {"bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed",
                                      "string", "synth_lead", "vocal"})
    if unknown:
        raise BssvaeError(f"families: {unknown} are not NSynth instrument families")
    examples = read_examples(split_dir)
    names = sorted(k for k, ex in examples.items()
                   if ex["instrument_family_str"] in families and ex["instrument_source_str"] in sources)
    if max_notes is not None:
        names = names[: check_int("max_notes", max_notes, minimum=1)]
    waves, inst, pitch, vel, silent = [], [], [], [], 0
    for name in names:
        path = split_dir / "audio" / f"{name}.wav"
        try:
            data, rate = sf.read(str(path), dtype="float64", always_2d=True)
        except (RuntimeError, OSError, sf.LibsndfileError) as e:
            raise DataError(f"{path}: unreadable NSynth wav ({e})") from e
        mono = data.mean(axis=1)[: int(np.ceil(n_samples * rate / sample_rate)) + 64]  # what we keep
        if rate != sample_rate:
            mono = librosa.resample(mono, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
        wave = np.zeros(n_samples)
        wave[: min(n_samples, len(mono))] = mono[:n_samples]
        wave = peak_normalize(wave)
        if wave is None:
            silent += 1
            continue
        ex = examples[name]
        waves.append(wave)
        inst.append(families.index(ex["instrument_family_str"]))
        pitch.append(int(ex["pitch"]))
        vel.append(int(ex["velocity"]))
    if not waves:
        raise DataError(f"{split_dir}: no audible {'/'.join(sources)} note of the families {list(families)}")
    meta = {"split_dir": split_dir.name, "families": list(families), "sources": list(sources),
            "skipped_silent": silent, "notes": len(waves)}
    return NoteBank(np.stack(waves), np.array(inst), np.array(pitch), np.array(vel), families, sample_rate,
                    "nsynth", meta)


def nsynth_notes(sample_rate: int, n_samples: int, splits=DEFAULT_SPLITS, root: Path | None = None,
                 families=NSYNTH_FAMILIES, download: bool = True, cache: bool = True) -> NoteBank:
    """NSynth's acoustic orchestral notes through the same pipeline as the rendered ones, cached.

    Downloads (:func:`download_nsynth`) any split not yet extracted under ``root``, reads it
    (:func:`read_nsynth`), and caches the converted bank as ``cache_dir()/audio/nsynth-<hash>.npz``.
    """
    root = Path(root) if root is not None else nsynth_root()
    splits = tuple(_check_split(s) for s in splits)
    params = {"kind": "nsynth", "splits": list(splits), "sample_rate": int(sample_rate), "n_samples": int(n_samples),
              "families": list(families), "root": str(root.resolve())}
    path = audio_cache_dir() / f"nsynth-{cache_key(params)}.npz"
    if cache and (bank := load_cached_bank(path, params)) is not None:
        return bank
    banks = []
    for split in splits:
        split_dir = root / f"nsynth-{split}"
        if not (split_dir / "examples.json").exists():
            if not download:
                raise DataError(f"NSynth {split} is not extracted in {root} (download=False)")
            split_dir = download_nsynth(split, root)
        banks.append(read_nsynth(split_dir, sample_rate, n_samples, families))
    bank = concatenate(banks) if len(banks) > 1 else banks[0]
    bank.source = "nsynth"
    bank.meta["params"] = params
    if cache:
        bank.save(path)
    return bank
