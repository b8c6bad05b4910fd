"""``fatsr models``: the built-in models, what they expect and how well they measured."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """\
List the models shipped with fatsr. Use one with `fatsr upscale --model NAME` (the one
marked 'default' runs without --model); `fatsr info NAME` shows everything its file records.
Quality and speed are the figures measured for the model (its file records the command).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr models``'s arguments."""
    parser.add_argument("--json", action="store_true", help="print the models' records as JSON")
    parser.set_defaults(func=run)


def _quality(ev: object) -> str:
    if not isinstance(ev, dict) or "psnr_y" not in ev:
        return "not measured"
    text = f"{ev['psnr_y']:.3f} dB / {ev['ssim_y']:.4f}"
    if "bicubic_psnr_y" in ev:
        text += f" ({ev['psnr_y'] - ev['bicubic_psnr_y']:+.2f} dB over bicubic)"
    return text


def _speed(info: dict) -> str:
    sp = info.get("speed")
    if not isinstance(sp, dict) or "lr_mpx_per_cpu_s" not in sp:
        return "not measured"
    threads = sp.get("threads", "?")
    wall = f"{sp['lr_mpx_per_s']:.4g} LR megapixels per second, " if "lr_mpx_per_s" in sp else ""
    return (
        f"{wall}{sp['lr_mpx_per_cpu_s']:.4g} per CPU-second ({threads} thread{'' if threads == 1 else 's'}, "
        f"{sp.get('scene', 'tiled scene')})"
    )


def run(args: argparse.Namespace) -> int:
    from fatsr.errors import FatsrError
    from fatsr.models import zoo

    shipped = zoo.builtin_models()
    if not shipped:
        raise FatsrError("this fatsr build ships no models; pass --model PATH to the commands")
    default = zoo.default_name()
    order = sorted(shipped, key=lambda name: (name != default, name))  # the default first
    records = {name: zoo.summary(shipped[name]) for name in order}
    if args.json:
        print(json.dumps({name: {**info, "default": name == default} for name, info in records.items()}, indent=2))
        return 0
    for name, info in records.items():
        evaluation = info.get("evaluation")
        ev: dict = evaluation if isinstance(evaluation, dict) else {}
        bands = info.get("bands", "?").replace(",", " ")
        print(f"{name}{'  (default)' if name == default else ''}")
        print(
            f"  x{info['scale']}, bands {bands}, {info['parameters'] / 1e6:.2f} M parameters ({info['architecture']})"
        )
        if info.get("description"):
            print(f"  {info['description']}")
        print(f"  trained on: {info.get('training_data', 'not recorded')}; GSD {info.get('gsd_m', '?')} m")
        print(f"  degradation: {info.get('degradation', 'not recorded')}")
        print(f"  PSNR-Y / SSIM-Y: {_quality(ev)}" + (f" on {ev['data']}" if ev.get("data") else ""))
        degraded = ev.get("degraded")
        if isinstance(degraded, dict):
            print(
                f"  degraded inputs: {_quality(degraded)}" + (f" on {degraded['data']}" if degraded.get("data") else "")
            )
        print(f"  speed: {_speed(info)}")
    for old, (new, why) in zoo.ALIASES.items():
        if new in shipped and old not in shipped:
            print(f"{old}: former name of {new} ({why}); runs {new}")
    return 0
