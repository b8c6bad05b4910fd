"""One device choice for commands, API and trainer."""

from __future__ import annotations

import pytest
import torch

from fatsr.cli.flags import flag_of
from fatsr.devices import resolve_device
from fatsr.errors import ArgumentError


def test_auto_and_explicit_cpu():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_refusals_name_the_device_as_a_flag():
    with pytest.raises(ArgumentError) as unknown:
        resolve_device("tpu9")
    assert unknown.value.render(flag_of).startswith("--device tpu9: unknown device")
    with pytest.raises(ArgumentError, match="not supported here; use auto, cpu, cuda"):
        resolve_device("mps", kinds=("cpu", "cuda"))  # the trainer's kinds


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda():
    with pytest.raises(ArgumentError) as err:
        resolve_device("cuda:1")
    assert (
        err.value.render(flag_of) == "--device cuda:1: CUDA is not available on this machine; use --device cpu or auto"
    )
