import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from bssvae import data
from bssvae.errors import DataError


def test_load_mnist_shapes(mnist_test_images):
    assert mnist_test_images.shape == (10000, 28, 28) and mnist_test_images.dtype == torch.uint8
    assert int(mnist_test_images.max()) == 255


def test_offline_copy_is_genuine_mnist():
    """The offline copy, re-encoded as IDX, hashes to the canonical decompressed MNIST files."""
    import hashlib

    arrays = data._offline_mnist()
    raw = struct.pack(">HBBIII", 0, 8, 3, 60000, 28, 28) + arrays["train_images"].tobytes()
    assert hashlib.sha256(raw).hexdigest() == data.MNIST_RAW_SHA256["train-images-idx3-ubyte"]
    assert data.idx_sha256(arrays["test_images"]) == data.MNIST_RAW_SHA256["t10k-images-idx3-ubyte"]
    assert data.idx_sha256(arrays["test_labels"]) == data.MNIST_RAW_SHA256["t10k-labels-idx1-ubyte"]


def test_tampered_offline_copy_is_refused(tmp_path, monkeypatch):
    """One changed pixel in the offline package's pickle is detected by the IDX hashes."""
    import importlib.util
    import pickle

    spec = importlib.util.find_spec("mnist")
    src = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    with gzip.open(src, "rb") as f:
        splits = pickle.load(f, encoding="latin1")
    (tex, tey) = splits[2]
    tex = np.array(tex, copy=True)
    tex[123, 400] = 1.0 - tex[123, 400]
    fake = tmp_path / "mnist"
    (fake / "data").mkdir(parents=True)
    with gzip.open(fake / "data" / "mnist.pkl.gz", "wb") as f:
        pickle.dump((splits[0], splits[1], (tex, tey)), f)

    class Spec:
        submodule_search_locations = [str(fake)]

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: Spec())
    data._offline_mnist.cache_clear()
    try:
        with pytest.raises(DataError, match="test images differ from MNIST's t10k-images-idx3-ubyte"):
            data._offline_mnist()
    finally:
        data._offline_mnist.cache_clear()


def test_test_mixtures_use_each_image_once(mnist_test_images):
    x, s = data.make_test_mixtures(mnist_test_images, n_digits=2, n_mixtures=5000, seed=0)
    assert x.shape == (5000, 784) and s.shape == (5000, 2, 784)
    torch.testing.assert_close(x, s.sum(1))
    assert float(s.max()) <= 0.5 and float(x.max()) <= 1.0
    # each of the 10,000 test images is used exactly once: the sources are a permutation of them
    flat = (s.reshape(-1, 784) * 2 * 255).round().to(torch.uint8)
    images = mnist_test_images.reshape(-1, 784)
    key = lambda a: sorted(map(bytes, a.numpy()))  # noqa: E731
    assert key(flat) == key(images)
    x2, _ = data.make_test_mixtures(mnist_test_images, n_digits=2, n_mixtures=5000, seed=0)
    assert torch.equal(x, x2)


def test_the_test_set_is_the_one_the_committed_results_were_scored_on(mnist_test_images):
    """Seed 0's first mixtures are those kept, in float16, in a committed run's examples.npz (scored on the
    test set of that seed); another seed draws other mixtures."""
    import numpy as np

    from bssvae.results import project_root

    kept = np.load(project_root() / "results" / "paper" / "runs" / "mnist-vae-K2-M2-seed0" / "examples.npz")
    n = len(kept["x"])
    x, s = data.make_test_mixtures(mnist_test_images, n_digits=2, n_mixtures=5000, seed=0)
    np.testing.assert_allclose(x[:n].numpy(), kept["x"].astype(np.float32), atol=1e-3)
    np.testing.assert_allclose(s[:n].numpy(), kept["s"].astype(np.float32), atol=1e-3)
    other, _ = data.make_test_mixtures(mnist_test_images, n_digits=2, n_mixtures=5000, seed=1)
    assert float((other[:n] - x[:n]).abs().max()) > 0.5


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_mixtures_of_m_digits(mnist_test_images, m):
    x, s = data.make_test_mixtures(mnist_test_images, n_digits=m, n_mixtures=100, seed=1)
    assert s.shape == (100, m, 784)
    torch.testing.assert_close(x, s.sum(1))


def test_too_many_mixtures(mnist_test_images):
    with pytest.raises(data.BssvaeError, match="n_mixtures"):
        data.make_test_mixtures(mnist_test_images, n_digits=3, n_mixtures=5000)


def test_epoch_batches_repair_each_epoch():
    images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    task = data.MnistTask(images, torch.zeros(1, 784), torch.zeros(1, 2, 784))
    g = torch.Generator().manual_seed(0)
    e1 = torch.cat(list(task.epoch_batches(g, 8)))
    e2 = torch.cat(list(task.epoch_batches(g, 8)))
    assert e1.shape == (32, 784) and not torch.equal(e1, e2)
    # every image appears once per epoch: the sum of all mixtures is the sum of all halved images
    torch.testing.assert_close(e1.sum(0), data.to_float(images).sum(0) * 0.5, rtol=1e-5, atol=1e-4)


def _idx(arr: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def test_parse_idx_roundtrip_and_truncation():
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(data.parse_idx(_idx(arr)), arr)
    with pytest.raises(DataError, match="truncated"):
        data.parse_idx(_idx(arr)[:-10])
    with pytest.raises(DataError, match="IDX"):
        data.parse_idx(b"\x01\x02\x03\x04" + b"\x00" * 10)


def test_corrupt_cache_detected_and_removed_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("BSSVAE_OFFLINE", "1")
    for name in data._SPLIT_FILES["test"]:
        (tmp_path / name).write_bytes(gzip.compress(b"not mnist"))
    with pytest.raises(DataError, match="sha256"):
        data.load_mnist("test", directory=tmp_path)
    assert not (tmp_path / "t10k-images-idx3-ubyte.gz").exists()


def test_verified_cache_is_read(tmp_path, monkeypatch):
    """A cache file whose hash matches is parsed (we patch the expected hashes to our small files)."""
    imgs = np.random.default_rng(0).integers(0, 256, (10000, 28, 28), dtype=np.uint8)
    labels = np.zeros(10000, dtype=np.uint8)
    hashes = dict(data.MNIST_FILES)
    for name, arr in zip(data._SPLIT_FILES["test"], (imgs, labels)):
        (tmp_path / name).write_bytes(gzip.compress(_idx(arr)))
        hashes[name] = data.sha256_file(tmp_path / name)
    monkeypatch.setattr(data, "MNIST_FILES", hashes)
    got = data.load_mnist("test", directory=tmp_path)
    np.testing.assert_array_equal(got.numpy(), imgs)


def test_download_checks_hash(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    dest = tmp_path / "cache" / "f.bin"
    with pytest.raises(DataError, match="sha256 mismatch"):
        data.download(src.as_uri(), dest, "0" * 64)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))
    data.download(src.as_uri(), dest, data.sha256_file(src))
    assert dest.read_bytes() == b"hello"
