from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fatsr.data import TrainDataset, ValDataset, bicubic_downscale, find_images, quantize
from fatsr.errors import FatsrError
from fatsr.io import read_image, write_image

UCM_VAL = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced" / "val"
REAL = ["harbor55.png", "forest05.png"]


def random_image(shape: tuple[int, ...], seed: int, dtype=np.uint8) -> np.ndarray:
    peak = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, peak + 1, size=shape, dtype=np.int64).astype(dtype)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    if img.ndim == 2:
        img = img[:, :, None]
    return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32)) / np.iinfo(img.dtype).max


def whole_lr(img: np.ndarray, scale: int) -> torch.Tensor:
    """Rounded bicubic LR of the whole (mod-cropped) image."""
    h, w = img.shape[0] // scale * scale, img.shape[1] // scale * scale
    return quantize(bicubic_downscale(to_tensor(img[:h, :w]), scale), np.iinfo(img.dtype).max)


def locate(patch: torch.Tensor, image: torch.Tensor) -> tuple[int, int]:
    """Top-left corner where ``patch`` occurs exactly in ``image`` (both CHW)."""
    ph, pw = patch.shape[-2:]
    windows = image.unfold(1, ph, 1).unfold(2, pw, 1)  # C, y, x, ph, pw
    hits = (windows == patch[:, None, None]).all(dim=(0, 3, 4)).nonzero()
    assert len(hits) == 1
    return int(hits[0, 0]), int(hits[0, 1])


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    write_image(folder / "b.png", random_image((45, 38, 3), 1))
    write_image(folder / "a.png", random_image((36, 44, 3), 2))
    return folder


def test_bicubic_downscale_matches_pillow():
    with Image.open(UCM_VAL / REAL[0]) as im:
        hr = np.asarray(im.convert("RGB"))[:255, :252]
    for scale in (3, 4):
        h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
        got = bicubic_downscale(to_tensor(hr[:h, :w])[None], scale)[0].numpy()
        size = (w // scale, h // scale)
        planes = [Image.fromarray(hr[:h, :w, c].astype(np.float32) / 255, mode="F").resize(size, Image.BICUBIC)
                  for c in range(3)]  # fmt: skip
        ref = np.clip(np.stack([np.asarray(p) for p in planes]), 0, 1)
        assert got.shape == (3, h // scale, w // scale)
        np.testing.assert_allclose(got, ref, atol=1e-5)
    with pytest.raises(FatsrError, match="not divisible by scale 4"):
        bicubic_downscale(torch.zeros(3, 10, 12), 4)


def test_find_images(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.txt", ".hidden.png", "d.tif"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in find_images(tmp_path)] == ["a.jpg", "b.PNG", "d.tif"]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_hr_only_crops_are_aligned(hr_folder, scale):
    data = TrainDataset(hr_folder, scale, patch_size=7, augment=False, seed=5)
    images = {p.stem: read_image(p) for p in find_images(hr_folder)}
    for epoch in range(3):
        data.set_epoch(epoch)
        for index in range(len(data)):
            item = data[index]
            img = images[item["name"]]
            assert item["hr"].shape == (3, 7 * scale, 7 * scale) and item["lr"].shape == (3, 7, 7)
            assert item["hr"].dtype == item["lr"].dtype == torch.float32
            top, left = locate(item["hr"], to_tensor(img))
            assert top % scale == 0 and left % scale == 0
            # the LR crop is the aligned crop of the whole image's stored-8-bit LR ...
            expected = whole_lr(img, scale)[:, top // scale : top // scale + 7, left // scale : left // scale + 7]
            assert torch.equal(item["lr"], expected)
            # ... and, away from the crop edge, the downscale of the HR crop itself
            own = bicubic_downscale(item["hr"], scale)
            assert (own - item["lr"])[:, 2:-2, 2:-2].abs().max() <= 0.5 / 255 + 1e-6


def test_several_folders_train_on_all_their_images(tmp_path, hr_folder):
    extra = tmp_path / "extra"
    extra.mkdir()
    write_image(extra / "c.png", random_image((40, 40, 3), 3))
    write_image(extra / "a.png", random_image((40, 40, 3), 4))  # same name as in hr_folder: both kept
    both = TrainDataset([hr_folder, extra], 2, patch_size=7, augment=False, seed=5)
    assert [(p.hr.parent.name, p.name) for p in both.pairs] == [
        ("hr", "a"),
        ("hr", "b"),
        ("extra", "a"),
        ("extra", "c"),
    ]
    for index, path in ((2, extra / "a.png"), (3, extra / "c.png")):  # the second folder's crops come from its files
        locate(both[index]["hr"], to_tensor(read_image(path)))
    first = TrainDataset(hr_folder, 2, patch_size=7, augment=False, seed=5)
    for index in range(len(first)):  # the first folder's items are exactly those of that folder alone
        assert torch.equal(both[index]["hr"], first[index]["hr"]) and torch.equal(both[index]["lr"], first[index]["lr"])
    with pytest.raises(FatsrError, match="missing: no such folder"):
        TrainDataset([hr_folder, tmp_path / "missing"], 2, patch_size=7)


def test_augmented_pairs_stay_aligned_and_vary(hr_folder):
    data = TrainDataset(hr_folder, 2, patch_size=8, augment=True)
    windows = to_tensor(read_image(hr_folder / "a.png")).unfold(1, 16, 1).unfold(2, 16, 1)
    seen = set()
    for epoch in range(12):
        data.set_epoch(epoch)
        item = data[0]
        own = bicubic_downscale(item["hr"], 2)
        assert (own - item["lr"])[:, 2:-2, 2:-2].abs().max() <= 0.5 / 255 + 1e-5
        variants = []  # which of the 8 flips/rotations of an HR crop is this?
        for k in range(4):
            for flip in (False, True):
                candidate = torch.rot90(item["hr"], k, dims=(1, 2))
                candidate = candidate.flip(-1) if flip else candidate
                if (windows == candidate[:, None, None]).all(dim=(0, 3, 4)).any():
                    variants.append((k, flip))
        assert len(variants) == 1
        seen.add(variants[0])
    assert len(seen) >= 4


def test_draws_depend_on_seed_epoch_and_index_only(hr_folder):
    a = TrainDataset(hr_folder, 2, patch_size=6, seed=1)
    b = TrainDataset(hr_folder, 2, patch_size=6, seed=1, cache=True)
    b.set_epoch(4)
    later = b[1]  # other items and epochs drawn first must not matter
    b[0]
    b.set_epoch(0)
    first = [b[1], b[1]]
    for item in first:
        assert torch.equal(item["hr"], a[1]["hr"]) and torch.equal(item["lr"], a[1]["lr"])
    a.set_epoch(4)
    assert torch.equal(a[1]["hr"], later["hr"]) and torch.equal(a[1]["lr"], later["lr"])
    a.set_epoch(5)
    assert not torch.equal(a[1]["hr"], later["hr"])
    other_seed = TrainDataset(hr_folder, 2, patch_size=6, seed=2)
    other_seed.set_epoch(4)
    assert not torch.equal(other_seed[1]["hr"], later["hr"])


def test_paired_folder_equals_synthesised_8bit_lr(tmp_path):
    """LR files written by the HR-only path give the same training items: rounding is exact."""
    hr_only = tmp_path / "hr_only"
    paired = tmp_path / "paired"
    hr_only.mkdir()
    (paired / "GT").mkdir(parents=True)
    (paired / "LR").mkdir()
    for name in REAL:
        shutil.copy(UCM_VAL / name, hr_only / name)
        shutil.copy(UCM_VAL / name, paired / "GT" / name)
    for item in ValDataset(hr_only, 4):
        lr = (item["lr"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        write_image(paired / "LR" / f"{item['name']}.png", lr)
    synth = TrainDataset(hr_only, 4, patch_size=16, seed=3)
    stored = TrainDataset(paired, 4, patch_size=16, seed=3)
    for epoch in (0, 1):
        synth.set_epoch(epoch)
        stored.set_epoch(epoch)
        for index in range(2):
            x, y = synth[index], stored[index]
            assert x["name"] == y["name"]
            assert torch.equal(x["hr"], y["hr"]) and torch.equal(x["lr"], y["lr"])
    val = ValDataset(paired, 4)[0]
    assert val["name"] == "forest05" and val["lr"].shape == (3, 64, 64) and val["hr"].shape == (3, 256, 256)


def test_val_dataset_mod_crops_and_synthesises(tmp_path):
    img = random_image((50, 47, 3), 7)
    write_image(tmp_path / "x.png", img)
    item = ValDataset(tmp_path, 4)[0]
    assert item["hr"].shape == (3, 48, 44)
    assert torch.equal(item["hr"], to_tensor(img[:48, :44]))
    assert torch.equal(item["lr"], whole_lr(img, 4))
    assert torch.equal(item["lr"], (item["lr"] * 255).round() / 255)


def test_sixteen_bit_grey_and_rgba(tmp_path):
    rgb16 = random_image((24, 20, 3), 3, np.uint16)
    grey16 = random_image((24, 20), 4, np.uint16)
    rgba = random_image((24, 20, 4), 5)
    grey8 = random_image((24, 20), 6)
    write_image(tmp_path / "rgb16.png", rgb16)
    write_image(tmp_path / "grey16.png", grey16[:, :, None])
    write_image(tmp_path / "rgba.png", rgba)
    write_image(tmp_path / "grey8.png", grey8[:, :, None])
    items = {item["name"]: item for item in ValDataset(tmp_path, 2)}
    assert torch.equal(items["rgb16"]["hr"], to_tensor(rgb16))
    assert torch.equal(items["grey16"]["hr"], to_tensor(grey16).expand(3, -1, -1))
    assert torch.equal(items["rgba"]["hr"], to_tensor(rgba[:, :, :3]))
    assert torch.equal(items["grey8"]["hr"], to_tensor(grey8).expand(3, -1, -1))
    assert torch.equal(items["rgb16"]["lr"], whole_lr(rgb16, 2))
    assert not torch.equal(items["rgb16"]["lr"], (items["rgb16"]["lr"] * 255).round() / 255)
    train = TrainDataset(tmp_path, 2, patch_size=5)
    for index in range(len(train)):
        item = train[index]
        assert item["hr"].shape == (3, 10, 10) and item["lr"].shape == (3, 5, 5)
        assert 0 <= item["hr"].min() and item["hr"].max() <= 1


def test_paired_folder_errors_list_the_pairs(tmp_path):
    (tmp_path / "HR").mkdir()
    (tmp_path / "LR").mkdir()
    for name in ("a", "b", "c"):
        write_image(tmp_path / "HR" / f"{name}.png", random_image((16, 16, 3), 0))
    write_image(tmp_path / "LR" / "a.png", random_image((4, 4, 3), 0))
    write_image(tmp_path / "LR" / "b.png", random_image((8, 8, 3), 0))
    write_image(tmp_path / "LR" / "z.png", random_image((4, 4, 3), 0))
    with pytest.raises(FatsrError) as info:
        TrainDataset(tmp_path, 4, patch_size=2)
    message = str(info.value)
    assert "\n" not in message
    assert "HR without LR: c" in message and "LR without HR: z" in message
    assert "b (HR 16x16, LR 8x8)" in message and "a (" not in message
    with pytest.raises(FatsrError, match="HR without LR: c"):
        ValDataset(tmp_path, 4)


def test_folder_errors(tmp_path, hr_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(FatsrError, match="no images"):
        TrainDataset(empty, 4)
    with pytest.raises(FatsrError, match="no such folder"):
        ValDataset(tmp_path / "absent", 4)
    with pytest.raises(FatsrError, match=r"a \(44x36\), b \(38x45\).*smaller patch size"):
        TrainDataset(hr_folder, 4, patch_size=10)
    (tmp_path / "lr_only" / "LR").mkdir(parents=True)
    with pytest.raises(FatsrError, match="no HR/ or GT/"):
        TrainDataset(tmp_path / "lr_only", 4)
    (hr_folder / "bad.png").write_bytes(b"not an image")
    with pytest.raises(FatsrError, match="bad.png: not a readable image"):
        TrainDataset(hr_folder, 2, patch_size=4)
    write_image(hr_folder / "bad.jpg", random_image((8, 8, 3), 0))
    (hr_folder / "bad.png").unlink()
    write_image(hr_folder / "bad.png", random_image((8, 8, 3), 0))
    with pytest.raises(FatsrError, match="keep one image per name"):
        ValDataset(hr_folder, 2)


def test_scale_augment_shrinks_half_the_images_by_a_drawn_factor(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    smooth = np.stack([*np.meshgrid(np.arange(96), np.arange(96), indexing="ij"), np.zeros((96, 96))], axis=2)
    image = (smooth * 2.5).astype(np.uint8)  # a ramp: a shrunk copy differs from every crop of the original
    write_image(folder / "ramp.png", image)
    shrunk_items = 0
    for epoch in range(12):
        data = TrainDataset(folder, 2, patch_size=12, augment=False, seed=3, scale_augment=4.0)
        data.set_epoch(epoch)
        rng = np.random.default_rng([3, epoch, 0])
        expected = image
        if rng.random() >= 0.5:  # the first draw decides, the second gives the factor
            shrunk_items += 1
            factor = float(np.exp(rng.uniform(0.0, np.log(96 / 24))))  # at most down to the 24x24 HR crop
            side = max(round(96 / factor), 24)
            expected = np.asarray(Image.fromarray(image).resize((side, side), Image.BICUBIC))
        top, left = (int(rng.integers(0, expected.shape[0] // 2 - 12 + 1)) for _ in range(2))
        crop = expected[top * 2 : top * 2 + 24, left * 2 : left * 2 + 24]
        assert torch.equal(data[0]["hr"], to_tensor(crop))
    assert 0 < shrunk_items < 12
    off = TrainDataset(folder, 2, patch_size=12, augment=False, seed=3, scale_augment=1.0)
    assert torch.equal(off[0]["hr"], TrainDataset(folder, 2, patch_size=12, augment=False, seed=3)[0]["hr"])
