from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # tiny test models are slower with two threads on a loaded machine
    yield


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    """A tiny random-weight x2 FAT model file."""
    from fatsr.models.fat import FAT
    from fatsr.models.files import save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    save_model(path, FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="tiny")
    return path
