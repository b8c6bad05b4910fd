"""ONNX export: the matrix DFT and stable hash sort against independent numbers, the exported
graph against PyTorch (single tiles and tiled), its metadata, and the CLI's errors."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import fatsr
from fatsr.cli import main
from fatsr.errors import FatsrError
from fatsr.export import export_onnx, onnx_metadata
from fatsr.inference.tiling import Tiling, upscale_tiled
from fatsr.models.dft import irfft2_matmul, rfft2_matmul
from fatsr.models.fat import FAT, FourierSparseSelfAttention, from_official_state_dict
from fatsr.models.files import save_model
from fatsr.models.onnx_runner import load_onnx_model
from fatsr.models.runtime import Runtime, runtime

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "fat_parity_fixture.safetensors"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "harbor55.png"
TILE, SEED = 24, 3


@pytest.fixture(scope="module")
def exported(model_file, tmp_path_factory) -> Path:
    """The tiny x2 model exported for 24x24 tiles with seed 3."""
    return export_onnx(model_file, tmp_path_factory.mktemp("onnx") / "tiny.onnx", tile=TILE, seed=SEED)


def pytorch_model(model_file: Path, seed: int) -> fatsr.models.wrapper.SRModel:
    """The PyTorch computation the graph holds: the same model, run on the export path."""
    return fatsr.load_model(model_file, seed=seed)


@pytest.mark.parametrize("height, width", [(12, 12), (12, 13), (7, 5), (24, 37), (1, 1), (6, 2)])
def test_matrix_dft_equals_fft(height, width):
    g = torch.Generator().manual_seed(height * 100 + width)
    x = torch.randn(2, 3, height, width, generator=g)
    z = torch.fft.rfft2(x, norm="ortho")
    assert torch.allclose(rfft2_matmul(x), torch.cat([z.real, z.imag], dim=-2), atol=1e-5)
    # any spectrum, not only a real image's: irfft2 drops the imaginary DC/Nyquist parts
    spectrum = torch.randn(2, 3, 2 * height, width // 2 + 1, generator=g)
    expected = torch.fft.irfft2(
        torch.complex(spectrum[..., :height, :], spectrum[..., height:, :]), s=(height, width), norm="ortho"
    )
    assert torch.allclose(irfft2_matmul(spectrum, width), expected, atol=1e-5)


def test_fourier_attention_same_with_matrix_dft(monkeypatch):
    from fatsr.models import fat

    torch.manual_seed(0)
    fssa = FourierSparseSelfAttention(8, n_hashes=2).eval()
    x = torch.randn(1, 8, 24, 36)
    outs = []
    with torch.no_grad():
        for matrix_dft in (False, True):  # the DFT alone changes; the attention is on the export path in both
            monkeypatch.setattr(fat, "current", lambda matrix_dft=matrix_dft: Runtime(export=matrix_dft))
            with runtime(export=True, generator=torch.Generator().manual_seed(1)):
                outs.append(fssa(x))
    assert (outs[0] - outs[1]).abs().max() < 1e-5


@pytest.mark.parametrize("case", ["b", "c"])
def test_export_path_reproduces_published_stable_sort_output(monkeypatch, case):
    """The published code's output with a stable sort, recorded in the parity fixture."""
    tensors = load_file(str(FIXTURE))
    model = from_official_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith(f"{case}.sd.")}).eval()
    rotations = [tensors[k] for k in sorted(tensors) if k.startswith(f"{case}.rotation.")]
    monkeypatch.setattr(torch, "randn", lambda shape, *args, **kwargs: rotations.pop(0).clone())
    with torch.no_grad(), runtime(export=True):
        out = model(tensors[f"{case}.input"])
    monkeypatch.undo()
    assert not rotations
    assert (out - tensors[f"{case}.output_stable_sort"]).abs().max() < 1e-4


def test_onnx_equals_pytorch_for_the_same_seed(model_file, exported):
    onnx_model = load_onnx_model(exported)
    x = torch.rand(2, 3, TILE, TILE, generator=torch.Generator().manual_seed(7))  # any batch size
    with torch.inference_mode(), runtime(export=True):
        got = onnx_model(x)
        same_seed = pytorch_model(model_file, SEED)(x)
        other_seed = pytorch_model(model_file, SEED + 1)(x)
    assert got.shape == (2, 3, 2 * TILE, 2 * TILE)
    assert (got - same_seed).abs().max() < 1e-4
    assert (got - other_seed).abs().max() > 1e-3  # the rotations of the seed are in the graph


def test_onnx_tiled_equals_pytorch_tiled(model_file, exported):
    image = np.random.default_rng(0).random((3, 60, 50), dtype=np.float32)
    tiling = Tiling(tile=TILE, overlap=6, batch=3)
    got = upscale_tiled(load_onnx_model(exported), image, tiling)
    with runtime(export=True):
        expected = upscale_tiled(pytorch_model(model_file, SEED), image, tiling)
    assert got.shape == (3, 120, 100)
    assert np.abs(got - expected).max() < 1e-4


def test_metadata(exported):
    meta = onnx_metadata(exported)
    assert meta["fatsr_version"] == fatsr.__version__
    assert (meta["name"], meta["scale"], meta["tile"], meta["seed"], meta["channels"]) == ("tiny", "2", "24", "3", "3")
    assert 0 <= float(meta["check_max_abs_diff"]) < 1e-4
    model = load_onnx_model(exported)
    assert (model.name, model.scale, model.tile, model.seed, model.channels) == ("tiny", 2, 24, 3, 3)


def test_tile_larger_than_exported_tile(exported):
    with pytest.raises(FatsrError, match="use tile=24 or less"):
        upscale_tiled(load_onnx_model(exported), np.zeros((3, 40, 40), np.float32), Tiling(tile=36, overlap=6))


def test_foreign_onnx_files_are_refused(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["lr"], ["sr"])], "identity",
        [onnx.helper.make_tensor_value_info("lr", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("sr", onnx.TensorProto.FLOAT, [1])],
    )  # fmt: skip
    onnx.save(onnx.helper.make_model(graph), tmp_path / "identity.onnx")
    with pytest.raises(FatsrError, match="not written by fatsr export"):
        load_onnx_model(tmp_path / "identity.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(FatsrError, match="not a readable ONNX model"):
        load_onnx_model(tmp_path / "junk.onnx")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tile", "30"], "error: --tile 30: must be a positive multiple of 12"),
        (["--opset", "12"], "error: opset 12: choose one from 14 to 20"),
    ],
)
def test_cli_bad_options(model_file, tmp_path, capsys, extra, message):
    assert main(["export", str(model_file), "-o", str(tmp_path / "m.onnx"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_channels_must_fit_the_model(tmp_path):
    source = tmp_path / "four.safetensors"
    save_model(
        source, FAT(in_channels=4, out_channels=4, dim=8, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="four"
    )
    with pytest.raises(FatsrError, match="channels=1 for a 4-channel model; give channels=4"):
        export_onnx(source, tmp_path / "m.onnx", tile=TILE, channels=1)
    assert list(tmp_path.iterdir()) == [source]


def test_cli_missing_model(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not found" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_existing_output_needs_overwrite(model_file, tmp_path, capsys):
    output = tmp_path / "m.onnx"
    output.write_bytes(b"keep me")
    assert main(["export", str(model_file), "-o", str(output), "--tile", "24"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {output} exists; pass --overwrite to replace it\n"
    assert output.read_bytes() == b"keep me" and list(tmp_path.iterdir()) == [output]


def test_cli_export_prints_check_and_output(model_file, exported, tmp_path, capsys):
    output = tmp_path / "m.onnx"
    output.write_bytes(b"old")
    assert main(["export", str(model_file), "-o", str(output), "--tile", "24", "--seed", "3", "--overwrite"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("check: onnxruntime vs PyTorch on a random 1x3x24x24 tile: max abs diff ")
    assert lines[1] == f"wrote {output}: model 'tiny', scale 2, 3 channels, tile 24, seed 3"
    assert output.read_bytes() == exported.read_bytes()  # the same model, tile and seed: the same graph


# --- fatsr upscale with the onnxruntime backend ------------------------------------------------


def test_cli_upscale_with_an_onnx_model(exported, tmp_path, capsys):
    from PIL import Image

    from fatsr.inference.tiling import upscale_image

    rgb = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", str(exported)])
    assert code == 0, capsys.readouterr().err
    expected = upscale_image(load_onnx_model(exported), rgb, Tiling(tile=TILE, overlap=TILE // 4))  # the exported tile
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), expected)


def test_cli_lam_refuses_an_onnx_model(model_file, exported, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "in.png")
    for flags in (["--model", str(exported)], ["--model", str(model_file), "--compare", str(exported)]):
        assert main(["lam", str(tmp_path / "in.png"), "-o", str(tmp_path), *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flags[-2]} {exported}: an ONNX graph gives no gradients;"), err
        assert len(err.splitlines()) == 1
    assert not list(tmp_path.glob("*_lam.*"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--bf16"], "--bf16 is for the pytorch backend"),
        (["--seed", "5"], "exported with seed 3"),
        (["--seed", "0"], "--seed 0: this ONNX model was exported with seed 3"),  # 0 is a seed, not "not given"
        (["--backend", "pytorch"], "use --backend onnxruntime"),
        (["--tile", "36"], "use --tile 24 or less"),
    ],
)
def test_cli_upscale_onnx_errors(exported, tmp_path, capsys, flags, message):
    from PIL import Image

    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "in.png")
    code = main(
        ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", str(exported), *flags]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "out.png").exists()


def test_cli_backend_onnxruntime_needs_an_onnx_file(model_file, tmp_path, capsys):
    code = main(["upscale", str(model_file), "--model", str(model_file), "--backend", "onnxruntime"])
    err = capsys.readouterr().err
    assert code == 2 and "fatsr export" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def builtin_exported(tmp_path_factory) -> Path:
    """The built-in default model exported for 48x48 tiles with seed 0."""
    return export_onnx(None, tmp_path_factory.mktemp("onnx") / "x4.onnx", tile=48, seed=0)


def test_onnx_vs_pytorch_on_images_smaller_than_the_tile(builtin_exported):
    """The documented bounds (README, ONNX): at the exported tile a few 8-bit levels (tie order
    of equal hash codes); smaller inputs are padded to the tile, which FAT's global attention
    sees: up to 67 levels at single pixels, up to 1.6 on average. An export whose tile is the
    image's side rounded up to a multiple of 12 pads as PyTorch does and agrees again."""
    from fatsr.io import read_image

    onnx_model = load_onnx_model(builtin_exported)
    pytorch = fatsr.load_model(None, seed=0)
    image = torch.from_numpy(read_image(EXAMPLE).astype(np.float32) / 255).permute(2, 0, 1)[None]

    def levels(model, size: int) -> np.ndarray:
        with torch.inference_mode():
            return (model(image[:, :, :size, :size]).clamp(0, 1) * 255).round().numpy()

    worst = {}
    for size in (12, 24, 36, 48):
        with pytest.warns(UserWarning, match="padded to the 48x48 tile") if size == 12 else contextlib.nullcontext():
            diff = np.abs(levels(onnx_model, size) - levels(pytorch, size))
        worst[size] = (diff.max(), diff.mean())
    print("ONNX vs PyTorch, 8-bit levels (max, mean) by crop side:", worst)
    assert worst[48][0] <= 4 and worst[48][1] < 0.5
    assert all(worst[size][0] <= 67 and worst[size][1] < 1.6 for size in (12, 24, 36))
    assert max(worst[size][0] for size in (12, 24, 36)) > 8  # the padding's effect is real, not noise
    # 40x40 pads to 48 in both paths: the two agree as at a full tile
    diff = np.abs(levels(onnx_model, 40) - levels(pytorch, 40))
    assert diff.max() <= 4, diff.max()
