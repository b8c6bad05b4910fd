from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # tiny test models are slower with two threads on a loaded machine
    yield
