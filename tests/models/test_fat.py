"""The FAT network against numbers computed by the published code (tests/data fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from fatsr.errors import FatsrError
from fatsr.models.fat import FAT, FATConfig, from_official_state_dict, grown, relative_position_index
from fatsr.models.registry import build_network
from fatsr.models.runtime import runtime

TEST_DATA = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = TEST_DATA / "fat_parity_fixture.safetensors"


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        metadata = f.metadata()
    return load_file(str(FIXTURE)), metadata


def case_state_dict(tensors, case):
    prefix = f"{case}.sd."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def replay(monkeypatch, rotations):
    """Serve the recorded LSH rotations, in order, to the network's torch.randn calls."""
    queue = list(rotations)

    def fake_randn(shape, *args, **kwargs):
        stored = queue.pop(0)
        assert tuple(stored.shape) == tuple(shape)
        return stored.clone()

    monkeypatch.setattr(torch, "randn", fake_randn)
    return queue


@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_parity_with_published_code(fixture, monkeypatch, case):
    tensors, metadata = fixture
    model = from_official_state_dict(case_state_dict(tensors, case)).eval()
    config = json.loads(metadata[f"{case}.config"])
    assert model.config.dim == config["dim"] and model.scale == config["scale"]
    assert model.config.num_blocks == config["SRTB_num"] and model.config.num_layers == config["STL_num"]
    rotations = [tensors[k] for k in sorted(tensors) if k.startswith(f"{case}.rotation.")]
    left = replay(monkeypatch, rotations)
    with torch.no_grad():
        out = model(tensors[f"{case}.input"])
    monkeypatch.undo()
    assert left == []  # every recorded rotation consumed, in order
    assert (out - tensors[f"{case}.output"]).abs().max().item() < 1e-4


def test_intermediates_match(fixture, monkeypatch):
    tensors, _ = fixture
    model = from_official_state_dict(case_state_dict(tensors, "a")).eval()
    replay(monkeypatch, [tensors[k] for k in sorted(tensors) if k.startswith("a.rotation.")])
    with torch.no_grad():
        h0 = model.conv1(model.conv0(tensors["a.input"]))
        f = model.uafb(h0)
        assert (h0 - tensors["a.intermediate.h0"]).abs().max() < 1e-5
        assert (f - tensors["a.intermediate.uafb"]).abs().max() < 1e-5
        for i, block in enumerate(model.SRTB_list):
            f = block(f)
            assert (f - tensors[f"a.intermediate.srtb.{i:03d}"]).abs().max() < 1e-4


def test_unused_keys_dropped_exactly(fixture):
    tensors, metadata = fixture
    for case in "abc":
        sd = case_state_dict(tensors, case)
        model = from_official_state_dict(sd)
        kept = set(model.state_dict())
        unused = set(json.loads(metadata[f"{case}.unused_keys"]))
        index_keys = {k for k in sd if k.endswith("relative_position_index")}
        assert kept == set(sd) - unused - index_keys


def official_full_size_state_dict() -> dict[str, torch.Tensor]:
    """A random state dict with every key and shape of the published model (663 entries)."""
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for line in (TEST_DATA / "fat_official_state_dict.tsv").read_text().splitlines()[1:]:
        key, shape, dtype, _, _ = line.split("\t")
        dims = tuple(int(d) for d in shape.split("x"))
        if dtype == "int64":
            sd[key] = relative_position_index(int(round(dims[0] ** 0.5)))
        else:
            sd[key] = torch.randn(dims, generator=gen) * 0.02
    return sd


def test_full_size_published_state_dict_loads_in_wrappers():
    sd = official_full_size_state_dict()
    assert len(sd) == 663
    used = {
        l.split("\t")[0]
        for l in (TEST_DATA / "fat_official_state_dict.tsv").read_text().splitlines()[1:]
        if l.endswith("\tyes") and "relative_position_index" not in l
    }
    for wrapped in (sd, {"params_ema": sd}, {"state_dict": {f"module.{k}": v for k, v in sd.items()}}, {"model": sd}):
        model = from_official_state_dict(wrapped)
        assert model.config == FAT().config
        assert set(model.state_dict()) == used
        assert torch.equal(model.conv4.weight, sd["conv4.weight"])


def test_published_size_has_only_used_parameters():
    net = build_network("fat")
    assert sum(p.numel() for p in net.parameters()) == 10_234_816


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda sd: sd.pop("conv4.weight"), "does not fit"),
        (lambda sd: sd.__setitem__("conv4.weight", torch.zeros(3, 3)), "does not fit"),
        (lambda sd: sd.pop("conv1.weight"), "not a FAT checkpoint"),
        (
            lambda sd: sd.__setitem__(
                "SRTB_list.0.STL.0.attn.relative_position_index", torch.zeros(36, 36, dtype=torch.long)
            ),
            "relative position",
        ),
    ],
)
def test_bad_checkpoints_give_clear_errors(fixture, mutate, message):
    sd = case_state_dict(fixture[0], "a")
    mutate(sd)
    with pytest.raises(FatsrError, match=message):
        from_official_state_dict(sd)


def test_not_a_state_dict():
    with pytest.raises(FatsrError, match="no state dict"):
        from_official_state_dict({"epoch": 3})


def test_seeded_generator_makes_output_repeatable():
    torch.manual_seed(0)
    net = FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2).eval()
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    outs = []
    with torch.no_grad():
        for seed in (5, 5, 6):
            with runtime(generator=torch.Generator().manual_seed(seed)):
                outs.append(net(x))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])  # the rotations matter


def test_grown_network_computes_the_same_and_learns_in_its_added_weights():
    torch.manual_seed(0)
    small = FAT(dim=16, num_blocks=2, num_layers=1, num_heads=2, mlp_ratio=2.0, scale=2)
    for p in small.parameters():  # not the zero-bias init: every weight matters
        p.data.normal_(0, 0.05)
    config = FATConfig(dim=16, num_blocks=2, num_layers=3, num_heads=2, mlp_ratio=4.0, scale=2)
    big = grown(small, config)
    assert big.config == config
    assert sum(p.numel() for p in big.parameters()) > sum(p.numel() for p in small.parameters())
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    outs = []
    for net in (small, big):
        with runtime(generator=torch.Generator().manual_seed(3)):
            outs.append(net(x))
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    outs[1].square().mean().backward()
    added = big.SRTB_list[0].STL[2]
    assert added.attn.proj.weight.grad.abs().sum() > 0 and added.mlp.fc2.weight.grad.abs().sum() > 0
    assert big.SRTB_list[0].STL[0].mlp.fc2.weight.grad[:, 32:].abs().sum() > 0  # the added hidden units
    for other in (FATConfig(dim=16, num_blocks=3, num_heads=2, scale=2), FATConfig(dim=16, num_layers=0, num_heads=2)):
        with pytest.raises(ValueError, match="grows only"):
            grown(small, other)


def test_bicubic_skip_adds_bicubic_upscale():
    net = FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=3, bicubic_skip=True).eval()
    torch.nn.init.zeros_(net.upsample.conv_last.weight)
    torch.nn.init.zeros_(net.upsample.conv_last.bias)
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    with torch.no_grad():
        out = net(x)
    expected = torch.nn.functional.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
    assert torch.allclose(out, expected, atol=1e-6)
    assert FAT().config.bicubic_skip is False  # the published model has none


@pytest.mark.parametrize("block_chunks", [3, 8])
def test_chunk_attention_and_its_backward_equal_the_plain_computation(monkeypatch, block_chunks):
    from fatsr.models import lsh

    monkeypatch.setattr(lsh, "BLOCK_CHUNKS", block_chunks)  # 10 chunks: blocks of 3, 3, 3, 1 or 8, 2
    gen = torch.Generator().manual_seed(0)
    rows = (10 + 2) * lsh.CHUNK_SIZE
    q = torch.randn(3, rows, 8, generator=gen, dtype=torch.float64)
    k = torch.nn.functional.normalize(torch.randn(3, rows, 8, generator=gen, dtype=torch.float64), dim=-1)
    v = torch.randn(3, rows, 12, generator=gen, dtype=torch.float64)
    d_out = torch.randn(3, 10 * lsh.CHUNK_SIZE, 12, generator=gen, dtype=torch.float64)
    d_lse = torch.randn(3, 10 * lsh.CHUNK_SIZE, generator=gen, dtype=torch.float64)
    results = []
    for attention in (lsh.ChunkAttention.apply, lsh.attend_plain):
        inputs = [x.clone().requires_grad_() for x in (q, k, v)]
        out, lse = attention(*inputs)
        grads = torch.autograd.grad([out, lse], inputs, [d_out, d_lse])
        results.append([out, lse, *grads])
    for fast, plain in zip(*results, strict=True):
        torch.testing.assert_close(fast, plain, rtol=0, atol=1e-10)
    assert results[0][2][:, : lsh.CHUNK_SIZE].abs().max() == 0  # the neighbour copies ask no query


def test_lsh_attention_fast_path_equals_the_plain_path_with_gradients(monkeypatch):
    """The whole LSH attention (hash, sort, chunks, rounds combined in sorted order) against the
    traced path's plain operations, in float64, outputs and gradients."""
    from fatsr.models import lsh

    torch.manual_seed(0)
    module = lsh.SparseAttention(8, n_hashes=3).double()
    u = torch.randn(2, 8, 20, 25, dtype=torch.float64)  # 500 tokens: 4 chunks, the last padded
    results = []
    for fast in (True, False):
        monkeypatch.setattr(lsh, "_fast_path", lambda x, fast=fast: fast)
        x = u.clone().requires_grad_()
        with runtime(generator=torch.Generator().manual_seed(1)):
            out = module(x)
        grads = torch.autograd.grad(out.pow(2).sum(), [x, *module.parameters()])
        results.append([out, *grads])
    for fast, plain in zip(*results, strict=True):
        torch.testing.assert_close(fast, plain, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upsampler_strips_and_folded_last_conv_equal_the_plain_layers(scale):
    """Without autograd the upsampler runs its last stage in strips with a halo and, after a x2
    shuffle, conv_last as 2x2 convs of the unshuffled map: the same numbers as the plain layers."""
    from fatsr.models.fat import Upsample

    torch.manual_seed(0)
    up = Upsample(scale, 8, 3)
    x = torch.randn(2, 8, 2 * up.strip_rows + 11, 7)  # several strips, the last one short
    with torch.no_grad():
        fast = up(x)
        plain = x
        for layer in up.upsample:
            plain = layer(plain)
        plain = up.conv_last(plain)
    assert fast.shape == plain.shape == (2, 3, scale * x.shape[2], scale * 7)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5)
