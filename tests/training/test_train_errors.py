"""Bad input ends in one line ``error: ...`` and exit code 2, before anything is written."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
import torch
from PIL import Image

from fatsr.cli import main
from fatsr.models.fat import FAT
from fatsr.models.files import save_model


def _fails(capsys, argv: list[str], *fragments: str) -> str:
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _with(flags: list[str], **changes: str) -> list[str]:
    """``flags`` with the values of some options replaced."""
    flags = list(flags)
    for name, value in changes.items():
        flags[flags.index(f"--{name.replace('_', '-')}") + 1] = value
    return flags


def test_data_errors(tmp_path, tiny_data, make_flags, capsys):
    flags = [*make_flags(tmp_path / "run"), "--steps", "1"]
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, _with(flags, data_dir=str(empty)), "no images")
    _fails(capsys, _with(flags, data_dir=str(tmp_path / "missing")), "no such folder")

    paired = tmp_path / "paired"
    shutil.copytree(tiny_data / "train", paired / "HR")
    (paired / "LR").mkdir()
    for path in sorted((paired / "HR").glob("*.png"))[:-1]:  # one LR missing, one of the wrong size
        with Image.open(path) as im:
            im.resize((20, 20) if path.name.startswith("agricultural") else (24, 24)).save(paired / "LR" / path.name)
    _fails(capsys, _with(flags, data_dir=str(paired)), "HR without LR", "not 2x the LR size")

    _fails(capsys, _with(flags, patch_size="32"), "smaller than the 64x64 HR crop")  # 48x48 images
    _fails(capsys, _with(flags, patch_size="20"), "--patch-size 20 does not fit", "multiple of 8")
    _fails(capsys, _with(flags, batch_size="8"), "6 training images, fewer than --batch-size 8")
    assert not (tmp_path / "run").exists()


def test_unwritable_save_dir(tmp_path, make_flags, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(capsys, [*make_flags(blocker / "run"), "--steps", "1"], "cannot create --save-dir")


def test_missing_vgg_weights_say_what_to_do(tmp_path, make_flags, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    flags = _with(make_flags(tmp_path / "run"), perceptual_weight="0.001")
    _fails(capsys, flags, "vgg19-dcbb9e9d.pth", "--vgg-weights", "--losses perceptual=0")


def test_tensorboard_needs_its_package(tmp_path, make_flags, capsys):
    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed")
    _fails(capsys, [*make_flags(tmp_path / "run"), "--tensorboard"], "pip install tensorboard")


def test_amp_needs_cuda(tmp_path, make_flags, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    _fails(capsys, [*make_flags(tmp_path / "run"), "--amp", "bf16"], "--amp bf16 needs a CUDA device")


def test_resume_errors(tmp_path, make_flags, capsys):
    run = tmp_path / "run"
    flags = [*make_flags(run), "--steps", "2", "--val-every", "10"]
    assert main(["train", *flags]) == 0
    capsys.readouterr()
    _fails(capsys, flags, "already holds a run", "--resume auto", "--overwrite")
    # another architecture: a different width, or a model file of another network
    _fails(capsys, [*flags, "--resume", "auto", "--network", "dim=24"], "checkpoint of another network", "dim 16")
    other = tmp_path / "other.safetensors"
    save_model(other, FAT(dim=8, num_blocks=1, num_layers=1, num_heads=2, window_size=4, scale=2), name="x")
    _fails(capsys, [*flags, "--resume", str(other), "--save-dir", str(tmp_path / "new")], "another network", "dim 8")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    _fails(capsys, [*flags, "--resume", str(tmp_path / "junk.pt")], "not a readable checkpoint")
    _fails(capsys, [*flags, "--resume", str(tmp_path / "nothing.pt")], "no such file")
    # --overwrite starts afresh
    assert main(["train", *flags, "--overwrite", "--steps", "1"]) == 0
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 1


def test_weights_only_resume_starts_from_a_model_file(tmp_path, make_flags, capsys):
    first = tmp_path / "first"
    assert main(["train", *make_flags(first), "--steps", "2", "--val-every", "10"]) == 0
    second = tmp_path / "second"
    flags = [*make_flags(second), "--steps", "1", "--resume", str(first / "model.safetensors"), "--lr", "1e-9"]
    assert main(["train", *flags]) == 0
    assert "initialised the weights from" in capsys.readouterr().out
    a = torch.load(first / "last.pt", weights_only=True)["ema"]["weights"]
    b = torch.load(second / "last.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # one step of lr 1e-9 later


def test_weights_of_another_scale_give_all_but_the_upsampler(tmp_path, make_flags, capsys):
    first = tmp_path / "x2"
    assert main(["train", *make_flags(first), "--steps", "1", "--val-every", "10"]) == 0
    capsys.readouterr()
    second = tmp_path / "x3"
    flags = [*make_flags(second), "--scale", "3", "--steps", "1", "--resume", str(first / "model.safetensors")]
    assert main(["train", *flags, "--lr", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "is a x2 model: took" in out and "start from random values" in out
    a = torch.load(first / "last.pt", weights_only=True)["ema"]["weights"]
    b = torch.load(second / "last.pt", weights_only=True)["model"]
    same = [k for k in a if k in b and a[k].shape == b[k].shape and torch.allclose(a[k], b[k], atol=1e-6)]
    assert set(b) - set(same) and all(k.startswith("upsample.") for k in set(b) - set(same))
    assert len(same) > len(b) // 2


def test_a_model_with_fewer_layers_grows_into_the_run(tmp_path, make_flags, capsys):
    first = tmp_path / "small"
    assert main(["train", *make_flags(first), "--steps", "1", "--val-every", "10"]) == 0
    capsys.readouterr()
    second = tmp_path / "grown"
    flags = [*make_flags(second), "--steps", "1", "--resume", str(first / "model.safetensors"), "--lr", "1e-9"]
    assert main(["train", *flags, "--network", "num_layers=2", "--network", "mlp_ratio=3"]) == 0
    assert "Swin layers per block" in capsys.readouterr().out
    a = torch.load(first / "last.pt", weights_only=True)["ema"]["weights"]
    b = torch.load(second / "last.pt", weights_only=True)["model"]
    fc2 = next(k for k in a if k.endswith("STL.0.mlp.fc2.weight"))
    assert b[fc2].shape[1] > a[fc2].shape[1]
    assert torch.allclose(b[fc2][:, : a[fc2].shape[1]], a[fc2], atol=1e-6)
    assert b[fc2][:, a[fc2].shape[1] :].abs().max() < 1e-6  # one step of lr 1e-9 from zero
    new = [k for k in b if k not in a]
    assert new and all(".STL.1." in k for k in new)
