import os

import pytest
import torch

os.environ.setdefault("BSSVAE_OFFLINE", "1")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throw-away project root: results/ and runs are written under tmp_path."""
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    (tmp_path / "bssvae").mkdir()
    monkeypatch.setenv("BSSVAE_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def mnist_test_images():
    from bssvae.data import load_mnist

    return load_mnist("test")


@pytest.fixture
def flip_tensor_bytes():
    """Invert ``n`` bytes in the middle of a file's data, as a damaged disk might: by default a safetensors file's
    tensor data (past its header); with ``data_start``, the bytes from there (0: the whole file)."""
    def flip(path, data_start=None, n=64):
        data = bytearray(path.read_bytes())
        start = 8 + int.from_bytes(data[:8], "little") if data_start is None else data_start
        middle = start + (len(data) - start) // 2
        data[middle:middle + n] = bytes(b ^ 0xFF for b in data[middle:middle + n])
        path.write_bytes(bytes(data))
    return flip


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
