"""Each training option is declared once (``training/config.py``): flags, help and checks come
from the declaration; loss terms are named (``losses``), with the former ``*_weight`` options as
aliases; ``stop_at`` cuts a stage short."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from fatsr import losses
from fatsr.cli import build_parser, message
from fatsr.cli.train import resolve_config
from fatsr.errors import FatsrError
from fatsr.training.config import FIELDS, TrainConfig, help_of, to_dict, updated
from fatsr.training.train import train


def _config(argv: list[str]) -> TrainConfig:
    return resolve_config(build_parser().parse_args(["train", *argv]))


def test_flags_and_help_come_from_the_declarations(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, declared in FIELDS.items():
        assert f"--{name.replace('_', '-')}" in text
        assert " ".join(help_of(declared).split())[:40] in text
    assert "--value-range LO HI" in text and "--betas B1 B2" in text and "--data_dir" in text


@pytest.mark.parametrize(
    ("change", "api", "cli"),
    [
        ({"stop_at": 0}, "stop_at=0: must be >= 1", "--stop-at 0: must be >= 1"),
        ({"scale_augment": 0.5}, "scale_augment=0.5: must be >= 1", "--scale-augment 0.5: must be >= 1"),
        ({"ema_decay": 1.0}, "ema_decay=1.0: must be in [0, 1)", "--ema-decay 1.0: must be in [0, 1)"),
        ({"betas": (0.9, float("nan"))}, "betas=(0.9, nan): must be finite numbers", "--betas 0.9 nan: must be"),
        ({"schedule": "linear"}, "schedule='linear': must be one of constant, cosine", "--schedule linear: must"),
        ({"losses": {"ssim": 1.0}}, "unknown loss term ssim; the terms are l1, lev, perceptual", "--losses: unknown"),
    ],
)
def test_the_checks_come_from_the_declarations(change, api, cli):
    with pytest.raises(FatsrError) as err:
        TrainConfig(**change).validate()
    assert api in str(err.value) and message(err.value).startswith(cli)


def test_losses_by_name_and_the_former_weight_options(tmp_path):
    defaults = {"l1": 1.0, "lev": 0.1, "perceptual": 0.001}
    assert TrainConfig().losses == defaults
    assert _config(["--losses", "lev=0.2", "perceptual=0"]).losses == {**defaults, "lev": 0.2, "perceptual": 0.0}
    assert _config(["--perceptual-weight", "0", "--l1-weight", "2"]).losses == {
        **defaults,
        "l1": 2.0,
        "perceptual": 0.0,
    }
    assert TrainConfig(lev_weight=0.3).losses == {**defaults, "lev": 0.3}  # from Python too
    # a config file (or a run folder's config.yaml) of either spelling
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"lev_weight": 0.5, "perceptual_weight": 0.0}))
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump({"losses": {"lev": 0.5, "perceptual": 0.0}}))
    assert _config(["--config", str(old)]).losses == _config(["--config", str(new)]).losses == {
        **defaults, "lev": 0.5, "perceptual": 0.0,
    }  # fmt: skip
    assert _config(["--config", str(new), "--lev-weight", "0.7"]).losses["lev"] == 0.7  # flags over the file
    saved = to_dict(_config(["--losses", "lev=0.2"]))
    assert saved["losses"] == {**defaults, "lev": 0.2} and "lev_weight" not in saved
    assert updated(TrainConfig(), {"l1_weight": 1.0, "lev_weight": 0.25, "perceptual_weight": 0.0}, "checkpoint").losses == {
        **defaults, "lev": 0.25, "perceptual": 0.0,
    }  # fmt: skip
    with pytest.raises(FatsrError, match=r"config value losses: .* is not a valid"):
        _config(["--losses", "lev=much"])
    assert _config(["--value-range", "0", "9", "--bands", "1,2,3"]).value_range == (0.0, 9.0)


def test_a_new_loss_term_is_one_entry_in_losses_py(monkeypatch):
    """A term registered in ``losses.TERMS`` alone is named, checked and computed."""
    tv = losses.LossTerm(lambda options: TotalVariation(), 0.0, "total variation of SR")
    monkeypatch.setitem(losses.TERMS, "tv", tv)
    config = _config(["--losses", "tv=0.5"])
    config.validate()
    assert config.losses["tv"] == 0.5 and "tv (total variation of SR)" in help_of(FIELDS["losses"])
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    total, terms = losses.FATLoss({**config.losses, "perceptual": 0})(sr, hr)
    assert set(terms) == {"l1", "lev", "tv"}
    expected = (sr[..., 1:, :] - sr[..., :-1, :]).abs().mean() + (sr[..., 1:] - sr[..., :-1]).abs().mean()
    torch.testing.assert_close(terms["tv"], expected)
    torch.testing.assert_close(total, terms["l1"] + 0.1 * terms["lev"] + 0.5 * terms["tv"])


class TotalVariation(torch.nn.Module):
    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return (sr[..., 1:, :] - sr[..., :-1, :]).abs().mean() + (sr[..., 1:] - sr[..., :-1]).abs().mean()


def test_stop_at_cuts_a_run_short_on_its_schedule(tmp_path, make_config):
    config = make_config(tmp_path / "run", steps=6, stop_at=3, schedule="cosine", val_every=3)
    result = train(config)
    assert result.steps == 3
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["step"] == 3 and state["total_steps"] == 6
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if r.get("kind") == "train" and "lr" in r]
    # the cosine of a 6-step run: at step 3 the rate is half the peak
    assert lrs and lrs[-1] == pytest.approx(config.lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * 2 / 6)).item()))
