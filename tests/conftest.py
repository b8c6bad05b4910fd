import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # tiny test models are slower with two threads on a loaded machine
    yield
