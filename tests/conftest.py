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
    """Invert 64 bytes inside a safetensors file's tensor data (past its header), as a damaged disk might."""
    def flip(path):
        data = bytearray(path.read_bytes())
        start = 8 + int.from_bytes(data[:8], "little")
        middle = start + (len(data) - start) // 2
        data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
        path.write_bytes(bytes(data))
    return flip


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
