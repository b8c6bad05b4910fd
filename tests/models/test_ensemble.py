"""Test-time ensembles (``--tta``) and the denoise strength (``--denoise``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open

from checks import assert_one_line_error
from fatsr.cli import main
from fatsr.models.contract import ModelInfo
from fatsr.models.ensemble import SelfEnsemble
from fatsr.models.loading import load_model
from fatsr.models.strength import BLURRED, SHARP, AutoDenoise, sharpness, strength
from fatsr.models.zoo import builtin_models


class Nearest:
    """Nearest x2: the same whichever way the input is turned."""

    scale, channels, name = 2, 3, "nearest"
    info = ModelInfo(name="nearest", scale=2, in_channels=3, out_channels=3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


class Skewed(Nearest):
    """Nearest x2 plus a ramp along the width: turning the input changes the output."""

    name = "skewed"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = super().__call__(x)
        return y + torch.linspace(0, 1, y.shape[-1])


def test_the_ensemble_of_an_equivariant_model_is_the_model_and_its_spread_is_zero():
    x = torch.rand(2, 3, 10, 14)
    torch.testing.assert_close(SelfEnsemble(Nearest())(x), Nearest()(x))
    assert SelfEnsemble(Nearest(), spread=True)(x).abs().max() < 1e-6


def test_the_ensemble_averages_the_eight_turned_back_outputs():
    x = np.random.default_rng(0).random((1, 3, 6, 8)).astype(np.float32)
    outputs = []
    for flip in (False, True):
        for k in range(4):
            t = np.rot90(x[..., ::-1] if flip else x, k, axes=(2, 3))
            y = Skewed()(torch.from_numpy(np.ascontiguousarray(t))).numpy()
            y = np.rot90(y, -k, axes=(2, 3))
            outputs.append(y[..., ::-1] if flip else y)
    got = SelfEnsemble(Skewed())(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, np.mean(outputs, axis=0), atol=1e-6)
    spread = SelfEnsemble(Skewed(), spread=True)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(spread[:, 0], np.std(outputs, axis=0).mean(axis=1), atol=1e-6)


def test_cli_tta_equals_the_mean_of_eight_turned_runs(capsys, tmp_path, model_file):
    """The whole picture fits one tile: --tta is the average of the CLI's outputs for the 8
    turned copies of the picture, turned back (to a grey level, the rounding of each)."""
    image = np.asarray(Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 8, 3), np.uint8)).resize((36, 36)))
    outputs = []
    for flip in (False, True):
        for k in range(4):
            turned = np.ascontiguousarray(np.rot90(image[:, ::-1] if flip else image, k))
            Image.fromarray(turned).save(tmp_path / "t.png")
            assert (
                main(
                    [
                        "upscale",
                        str(tmp_path / "t.png"),
                        "-o",
                        str(tmp_path / "t_x2.png"),
                        "--model",
                        str(model_file),
                        "--overwrite",
                    ]
                )
                == 0
            )
            y = np.rot90(np.asarray(Image.open(tmp_path / "t_x2.png")).astype(float), -k)
            outputs.append(y[:, ::-1] if flip else y)
    Image.fromarray(image).save(tmp_path / "in.png")
    assert (
        main(
            ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "tta.png"), "--model", str(model_file), "--tta"]
        )
        == 0
    )
    got = np.asarray(Image.open(tmp_path / "tta.png")).astype(float)
    assert np.abs(got - np.mean(outputs, axis=0)).max() <= 1.0
    assert np.abs(got - outputs[0]).max() > 1  # and it is not the plain output
    capsys.readouterr()


needs_both = pytest.mark.skipif(
    not {"fatsr-x4", "fatsr-real-x4"} <= set(builtin_models()), reason="this build lacks the two built-in models"
)


@needs_both
def test_denoise_mixes_the_weights_of_the_two_built_in_models():
    clean, real = (builtin_models()[n] for n in ("fatsr-x4", "fatsr-real-x4"))
    with safe_open(str(clean), "pt") as a, safe_open(str(real), "pt") as b:
        key = next(k for k in a.keys() if k.endswith("weight"))  # noqa: SIM118
        wa, wb = a.get_tensor(key), b.get_tensor(key)
    for s in (0.0, 0.3, 1.0):
        mixed = load_model(denoise=s).network.state_dict()[key]
        torch.testing.assert_close(mixed, (1 - s) * wa + s * wb, rtol=0, atol=1e-7)
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        assert torch.equal(load_model(denoise=1.0)(x), load_model(real)(x))  # the file: no mixing
        assert torch.equal(load_model(denoise=0.0)(x), load_model("fatsr-x4")(x))


@needs_both
@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--denoise", "1.5"], ["--denoise 1.5", "from 0"]),
        (["--denoise", "0.5", "--model", "bicubic"], ["--denoise 0.5", "drop --model bicubic"]),
    ],
)
def test_denoise_refusals(capsys, tmp_path, argv, needles):
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "in.png")
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), *argv])
    assert_one_line_error(code, capsys.readouterr().err, *needles)
    assert not (tmp_path / "o.png").exists()


def test_evaluate_refuses_tta_without_a_model(capsys, tmp_path):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "hr.png")
    code = main(["evaluate", str(tmp_path / "hr.png"), "--sr", str(tmp_path / "hr.png"), "--scale", "1", "--tta"])
    assert_one_line_error(code, capsys.readouterr().err, "--tta and --denoise are for --model")


def test_sharpness_against_numpy_and_the_strength_it_gives():
    rng = np.random.default_rng(0)
    image = rng.random((2, 3, 20, 24)).astype(np.float32)
    grey = image.mean(axis=1)
    first = (np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2)) + np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))) / 2
    second = np.abs(np.diff(np.diff(grey, 2, axis=1), 2, axis=2)).mean(axis=(1, 2))
    np.testing.assert_allclose(sharpness(torch.from_numpy(image)).numpy(), second / first, rtol=1e-5)
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert sharpness(flat).item() == 0
    sharp = torch.from_numpy(image)  # white noise: sharpness about 3
    ramp = torch.linspace(0, 1, 24).expand(1, 3, 20, 24) ** 2  # smooth: second differences vanish
    assert strength(sharp).tolist() == [0.0, 0.0]
    assert strength(ramp).tolist() == [1.0]
    assert strength(flat).tolist() == [1.0]  # nothing left to keep sharp
    assert BLURRED < SHARP


@needs_both
def test_auto_denoise_runs_each_image_at_its_own_strength():
    sharp = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    blurred = F.avg_pool2d(F.interpolate(sharp, scale_factor=4, mode="bilinear"), 4, stride=1)[..., :24, :24]
    blurred = F.avg_pool2d(blurred, 5, stride=1, padding=2)
    assert strength(sharp).item() == 0 and strength(blurred).item() == 1
    auto = load_model("fatsr-real-x4")  # by its name: the strength of each input
    assert isinstance(auto, AutoDenoise) and auto.info.metadata["denoise"] == "auto"
    assert load_model("fatsr-real-x4", denoise="auto").name == auto.name
    with torch.inference_mode():
        got = auto(torch.cat([sharp, blurred, sharp]))  # one batch, two strengths
        ends = {s: load_model(denoise=s) for s in (0.0, 1.0)}
        for y, x, s in ((got[0:1], sharp, 0.0), (got[1:2], blurred, 1.0)):  # equal up to batched float sums
            torch.testing.assert_close(y, ends[s](x), rtol=0, atol=1e-5)
            assert (y - ends[1 - s](x)).abs().max() > 1e-3  # and not the other strength's output
        torch.testing.assert_close(got[2:3], got[0:1], rtol=0, atol=0)
        assert torch.equal(auto(blurred), got[1:2])  # the same input gives the same output


@needs_both
def test_denoise_auto_on_the_command_line(capsys, tmp_path):
    picture = (np.random.default_rng(2).random((24, 24, 3)) * 255).astype(np.uint8)  # sharp: strength 0
    Image.fromarray(picture).save(tmp_path / "in.png")
    for argv, name in ((["--denoise", "auto"], "auto.png"), (["--model", "fatsr-x4"], "clean.png")):
        assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / name), "-q", *argv]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "auto.png")), np.asarray(Image.open(tmp_path / "clean.png")))
    with pytest.raises(SystemExit) as stop:
        main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--denoise", "high"])
    assert stop.value.code == 2 and not (tmp_path / "o.png").exists()
    assert "--denoise: give a number from 0 to 1 or auto, not 'high'" in capsys.readouterr().err
