"""The trainer's pieces: schedule, EMA, data order, RNG states, training step, config and flags."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from fatsr.cli import build_parser
from fatsr.cli.train import resolve_config
from fatsr.errors import FatsrError
from fatsr.training import TrainConfig, checkpoint
from fatsr.training.config import load_yaml, to_dict, updated, write_yaml
from fatsr.training.distributed import BatchSampler, Dist
from fatsr.training.ema import EMA
from fatsr.training.train import LRFactor, training_step


def test_lr_factor_warmup_cosine_multistep():
    cosine = LRFactor("cosine", total=110, warmup=10, milestones=[], gamma=0.5)
    assert [cosine(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert cosine(10) == 1.0 and cosine(60) == pytest.approx(0.5) and cosine(110) == pytest.approx(0.0)
    assert cosine(35) == pytest.approx(0.5 * (1 + math.cos(math.pi * 25 / 100)))
    multistep = LRFactor("multistep", total=100, warmup=0, milestones=[30, 60], gamma=0.1)
    assert [multistep(s) for s in (0, 29, 30, 59, 60, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert LRFactor("constant", 100, 4, [], 0.5)(1) == 0.5 and LRFactor("constant", 100, 4, [], 0.5)(50) == 1.0


def test_ema_follows_the_warmed_up_decay():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    ema = EMA(net, decay=0.9)
    expected = net.weight.detach().clone()
    for n in range(20):
        with torch.no_grad():
            net.weight.add_(torch.randn_like(net.weight))
        ema.update(net)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * net.weight.detach()
    assert torch.allclose(ema.module.weight, expected, atol=1e-6)
    assert not ema.module.weight.requires_grad
    clone = EMA(nn.Linear(3, 2), decay=0.9)
    clone.load_state_dict(ema.state_dict())
    assert clone.updates == 20 and torch.equal(clone.module.weight, ema.module.weight)


def test_ranks_share_each_global_batch_of_a_seeded_order():
    cpu = torch.device("cpu")
    single = list(BatchSampler(10, 4, Dist(0, 1, cpu), seed=3, epoch=1))
    assert len(single) == 2 and all(len(b) == 4 for b in single)  # partial batch dropped
    r0 = list(BatchSampler(10, 4, Dist(0, 2, cpu), seed=3, epoch=1))
    r1 = list(BatchSampler(10, 4, Dist(1, 2, cpu), seed=3, epoch=1))
    assert [a + b for a, b in zip(r0, r1, strict=True)] == single
    assert single == list(BatchSampler(10, 4, Dist(0, 1, cpu), seed=3, epoch=1))
    assert single != list(BatchSampler(10, 4, Dist(0, 1, cpu), seed=3, epoch=2))
    assert list(BatchSampler(10, 4, Dist(0, 1, cpu), seed=3, epoch=1, start=1)) == single[1:]
    assert sorted(i for b in list(BatchSampler(8, 2, Dist(0, 1, cpu), 0, 0)) for i in b) == list(range(8))


def test_rng_state_round_trip_through_a_checkpoint_file(tmp_path):
    checkpoint.seed_everything(5)
    checkpoint.save(tmp_path / "c.pt", {"rng": checkpoint.rng_state()})
    first = (random.random(), np.random.rand(), torch.rand(3))
    checkpoint.set_rng_state(checkpoint.read(tmp_path / "c.pt")["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])
    assert checkpoint.is_checkpoint(checkpoint.read(tmp_path / "c.pt"))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FatsrError, match="not a readable checkpoint"):
        checkpoint.read(tmp_path / "bad.pt")


def test_training_step_skips_non_finite_gradients_and_clips():
    torch.manual_seed(0)
    net = nn.Conv2d(3, 3, 3, padding=1)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)

    def loss_fn(sr, hr):
        total = (sr - hr).abs().mean() * 1000
        return total, {"l1": total}

    x = torch.rand(1, 3, 8, 8)
    before = [p.detach().clone() for p in net.parameters()]
    terms, finite = training_step(net, loss_fn, opt, x * float("nan"), x)
    assert not finite and math.isnan(terms["loss"])
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert all(p.grad is None for p in net.parameters())
    terms, finite = training_step(net, loss_fn, opt, x, torch.zeros_like(x), grad_clip=0.5)
    assert finite
    step = torch.cat([(a - b).flatten() for a, b in zip(before, net.parameters(), strict=True)])
    assert step.norm().item() == pytest.approx(0.5, rel=1e-5)  # SGD lr 1: the update is the clipped gradient


def _parse(argv):
    return build_parser().parse_args(["train", *argv])


def test_yaml_then_flags_then_published_flags(tmp_path):
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(yaml.safe_dump({"preset": "compact", "steps": 500, "lr": 3e-4, "patch-size": 24,
                                        "betas": [0.9, 0.99], "network": {"dim": 48}}))  # fmt: skip
    config = resolve_config(_parse(["--config", str(run_yaml), "--lr", "1e-3", "--network", "num_blocks=1"]))
    assert (config.preset, config.steps, config.lr, config.patch_size) == ("compact", 500, 1e-3, 24)
    assert config.betas == (0.9, 0.99) and config.network == {"dim": 48, "num_blocks": 1}  # merged
    published = resolve_config(_parse([
        "--config", str(run_yaml), "--data_dir", "d", "--save_dir", "s", "--save_cycle", "5", "--batch_size", "8",
        "--epochs", "3", "--no-cuda", "--resume", "auto",
    ]))  # fmt: skip
    assert (published.data_dir, published.save_dir, published.save_cycle, published.batch_size) == (["d"], "s", 5, 8)
    several = resolve_config(_parse(["--config", str(run_yaml), "--data-dir", "a", "b", "--data-dir", "c"]))
    assert several.data_dir == ["a", "b", "c"]
    run_yaml.write_text(yaml.safe_dump({"data_dir": "one"}))  # a single folder in YAML (or an older saved config)
    assert resolve_config(_parse(["--config", str(run_yaml)])).data_dir == ["one"]
    assert (published.epochs, published.steps, published.device, published.resume) == (3, None, "cpu", "auto")
    defaults = resolve_config(_parse([]))
    assert defaults == TrainConfig()
    assert (defaults.data_dir, defaults.save_dir, defaults.batch_size, defaults.lr, defaults.preset) == (
        ["./datasets/train"],
        "./checkpoints/v1",
        2,
        1e-4,
        None,  # by the device: fat on a GPU, compact on a CPU
    )


def test_a_folder_given_as_a_str_or_path_is_one_folder(tmp_path):
    config = TrainConfig(data_dir="a/path", val_dir=Path("v"), save_dir=Path("s"))
    assert (config.data_dir, config.val_dir, config.save_dir) == (["a/path"], "v", "s")
    assert TrainConfig(data_dir=Path("a")).data_dir == ["a"]
    assert TrainConfig(data_dir=("a", Path("b"))).data_dir == ["a", "b"]
    write_yaml(config, tmp_path / "config.yaml")  # paths are saved as text and read back the same
    assert updated(TrainConfig(), load_yaml(tmp_path / "config.yaml"), "x") == config


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = TrainConfig(preset="compact", network={"dim": 24}, milestones=[10, 20], betas=(0.8, 0.9), val_dir="v")
    write_yaml(config, tmp_path / "config.yaml")
    assert updated(TrainConfig(), load_yaml(tmp_path / "config.yaml"), "x") == config
    assert resolve_config(_parse(["--config", str(tmp_path / "config.yaml")])) == config
    assert to_dict(config)["betas"] == [0.8, 0.9]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("lr: [1]", "config value lr"),
        ("step: 10", "unknown option"),
        ("- a\n- b", "must be a mapping"),
        ("a: [", "not valid YAML"),
    ],
)
def test_bad_config_files(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(FatsrError, match=message):
        resolve_config(_parse(["--config", str(path)]))


@pytest.mark.parametrize(
    ("change", "api", "cli"),
    [
        ({"schedule": "linear"}, "schedule='linear': must be one of", "--schedule linear: must be one of"),
        ({"batch_size": 0}, "batch_size=0: must be >= 1", "--batch-size 0: must be >= 1"),
        ({"ema_decay": 1.0}, "ema_decay=1.0: must be in", "--ema-decay 1.0: must be in"),
        (
            {"schedule": "multistep"},
            "schedule='multistep' needs milestones='STEP [STEP ...]'",
            "--schedule multistep needs --milestones STEP [STEP ...]",
        ),
        ({"bands": [2, 2]}, "bands=[2, 2]: give different", "--bands 2,2: give different"),
        (
            {"value_range": (0.0, 9.0)},
            "give bands=(4, 3, 2, 5) too",
            "--value-range 0 9 maps raster bands; give --bands 4,3,2,5",
        ),
        (
            {"bands": [1, 2], "value_range": (9.0, 0.0)},
            "value_range=(9.0, 0.0): LO",
            "--value-range 9 0: LO must be below HI",
        ),
        (
            {"bands": [1, 2]},
            "the perceptual loss (VGG19 conv3_3 features; needs vgg19-dcbb9e9d.pth) needs 3 bands, not 2; add losses='perceptual=0'",
            "needs 3 bands, not 2; add --losses perceptual=0",
        ),
        ({"model_info": {"gsd": "1"}}, "model_info='gsd': not a model", "--model-info gsd: not a model"),
        ({"lr": 0.0}, "lr=0.0: must be > 0", "--lr 0.0: must be > 0"),
    ],
)
def test_invalid_values_are_refused(change, api, cli):
    from fatsr.cli import message

    with pytest.raises(FatsrError) as err:
        TrainConfig(**change).validate()
    assert api in str(err.value) and cli in message(err.value)  # a config key from Python, a flag from the CLI


def test_every_config_field_is_a_flag(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for name in to_dict(TrainConfig()):
        assert f"--{name.replace('_', '-')}" in text
    for published in ("--data_dir", "--save_dir", "--save_cycle", "--batch_size", "--no-cuda", "--epochs", "--lr"):
        assert published in text


def test_patch_size_error_names_the_argument_and_the_flag():
    from fatsr.cli import message
    from fatsr.models.fat import FATConfig
    from fatsr.training.train import check_patch_size

    rule = FATConfig(window_size=6).size_rule()  # multiples of 12, at least 24 (one LSH chunk of Fourier tokens)
    check_patch_size(rule, 24)
    with pytest.raises(FatsrError) as err:
        check_patch_size(rule, 30)
    assert str(err.value) == (
        "patch_size=30 does not fit this network: LR patches must be a multiple of 12 and at least 24 pixels; use e.g. 24"
    )
    assert message(err.value).startswith("--patch-size 30 does not fit this network")
