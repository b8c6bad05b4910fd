"""Write a trained model file as a built-in model: same weights, with the name and the record
`fatsr models` / `fatsr info` show (what it expects, its data, and the figures measured for it).

    python scripts/ship_model.py runs/x4/best.safetensors --name fatsr-x4 \
        --info gsd_m=0.3048 --info "training_data=UC Merced ..." \
        --evaluation eval/fatsr-x4 --baseline eval/bicubic --evaluation-command "fatsr evaluate ..." \
        --speed 0.012 --speed-threads 1 --speed-command "python benchmarks/bench_scene.py ..."

--evaluation / --baseline are `fatsr evaluate -o` folders (their summary.json) of the model and
of `--model bicubic` on the same images; --degraded-evaluation / --degraded-baseline the same on
degraded LR inputs (`fatsr evaluate --lr`). Writes src/fatsr/weights/NAME.safetensors (or -o).
scripts/ship_models.py measures and ships all the built-in models with this script's ship().
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from fatsr.models.files import DEFAULT_INFO, INFO_KEYS, load_network, read_metadata, save_model

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "fatsr" / "weights"
KEPT = ("psnr_y", "ssim_y", "psnr_low", "psnr_mid", "psnr_high")


def evaluation(model_dir: Path, baseline_dir: Path, command: str, data: str | None = None) -> dict:
    """The figures of a `fatsr evaluate` folder beside those of its bicubic baseline's folder."""
    model = json.loads((model_dir / "summary.json").read_text())
    base = json.loads((baseline_dir / "summary.json").read_text())
    if any(model["settings"][k] != base["settings"][k] for k in ("hr", "lr", "scale", "border")):
        raise SystemExit(f"error: {model_dir} and {baseline_dir} scored different images, LR inputs or scales")
    settings = model["settings"]
    hr = Path(settings["hr"])
    record = {"data": data or f"{model['images']} images of {hr.parent.name}/{hr.name}, x{settings['scale']}, "
              f"border {settings['border']}, BT.601 Y; LR = {settings['lr']}"}  # fmt: skip
    record.update({k: round(model["mean"][k], 4) for k in KEPT})
    record.update({f"bicubic_{k}": round(base["mean"][k], 4) for k in KEPT})
    record["command"] = command
    return record


def ship(source: Path, name: str, info: dict, evaluation: dict, speed: dict, output: Path | None = None) -> Path:
    """Write ``source``'s network as model ``name`` with ``info`` (keys of INFO_KEYS; unset ones
    from the source file, then DEFAULT_INFO), the ``evaluation`` and ``speed`` records; the
    written weights are checked equal to the source's."""
    network, _ = load_network(source)
    source_meta = read_metadata(source)
    record = {**DEFAULT_INFO, **{k: source_meta[k] for k in INFO_KEYS if k in source_meta}, **info}
    record["evaluation"], record["speed"] = evaluation, speed
    extra = json.loads(source_meta["extra"]) if "extra" in source_meta else None
    output = output or WEIGHTS / f"{name}.safetensors"
    save_model(output, network, name=name, extra=extra, info=record, overwrite=True)
    shipped, _ = load_network(output)
    assert all(
        torch.equal(a, b) for a, b in zip(shipped.state_dict().values(), network.state_dict().values(), strict=True)
    )
    print(f"wrote {output} ({output.stat().st_size / 2**20:.2f} MiB)")
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--info", action="append", default=[], metavar="KEY=VALUE", help=f"keys: {', '.join(INFO_KEYS)}"
    )
    parser.add_argument("--evaluation", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--evaluation-command", required=True)
    parser.add_argument(
        "--speed", type=float, required=True, help="LR Mpx per CPU-second measured by benchmarks/bench_scene.py"
    )
    parser.add_argument("--speed-wall", type=float, help="LR Mpx per second (wall clock) of the same run")
    parser.add_argument("--speed-threads", type=int, required=True)
    parser.add_argument(
        "--degraded-evaluation", type=Path, help="the model on degraded LR inputs (fatsr evaluate --lr)"
    )
    parser.add_argument("--degraded-baseline", type=Path)
    parser.add_argument("--degraded-command")
    parser.add_argument("--speed-command", required=True)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()

    record = evaluation(args.evaluation, args.baseline, args.evaluation_command)
    if args.degraded_evaluation:
        if not (args.degraded_baseline and args.degraded_command):
            parser.error("--degraded-evaluation needs --degraded-baseline and --degraded-command")
        record["degraded"] = evaluation(args.degraded_evaluation, args.degraded_baseline, args.degraded_command)
    speed = {"lr_mpx_per_cpu_s": args.speed, "threads": args.speed_threads, "command": args.speed_command}
    if args.speed_wall is not None:
        speed["lr_mpx_per_s"] = args.speed_wall
    ship(args.source, args.name, dict(item.split("=", 1) for item in args.info), record, speed, args.output)


if __name__ == "__main__":
    main()
