"""Write a trained model file as a built-in model: same weights, with the name and the record
`fatsr models` / `fatsr info` show (what it expects, its data, and the figures measured for it).

    python scripts/ship_model.py runs/x4/best.safetensors --name fatsr-x4 \
        --info gsd_m=0.3048 --info "training_data=UC Merced ..." \
        --evaluation eval/fatsr-x4 --baseline eval/bicubic --evaluation-command "fatsr evaluate ..." \
        --speed 0.012 --speed-threads 1 --speed-command "python benchmarks/bench_scene.py ..."

--evaluation / --baseline are `fatsr evaluate -o` folders (their summary.json) of the model and
of `--model bicubic` on the same images. Writes src/fatsr/weights/NAME.safetensors (or -o).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from fatsr.models.files import DEFAULT_INFO, INFO_KEYS, load_network, read_metadata, save_model

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "fatsr" / "weights"
KEPT = ("psnr_y", "ssim_y", "psnr_low", "psnr_mid", "psnr_high")


def evaluation(model_dir: Path, baseline_dir: Path, command: str) -> dict:
    model = json.loads((model_dir / "summary.json").read_text())
    base = json.loads((baseline_dir / "summary.json").read_text())
    if model["settings"]["hr"] != base["settings"]["hr"] or model["settings"]["scale"] != base["settings"]["scale"]:
        raise SystemExit("error: --evaluation and --baseline scored different images or scales")
    record = {"data": f"{model['images']} images of {Path(model['settings']['hr']).name}, x{model['settings']['scale']}, "
              f"border {model['settings']['border']}, BT.601 Y; LR = {model['settings']['lr']}"}  # fmt: skip
    record.update({k: round(model["mean"][k], 4) for k in KEPT})
    record.update({f"bicubic_{k}": round(base["mean"][k], 4) for k in KEPT})
    record["command"] = command
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--info", action="append", default=[], metavar="KEY=VALUE", help=f"keys: {', '.join(INFO_KEYS)}")
    parser.add_argument("--evaluation", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--evaluation-command", required=True)
    parser.add_argument("--speed", type=float, required=True, help="LR Mpx per CPU-second measured by benchmarks/bench_scene.py")
    parser.add_argument("--speed-threads", type=int, required=True)
    parser.add_argument("--speed-command", required=True)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()

    network, _ = load_network(args.source)
    source_meta = read_metadata(args.source)
    info = {**DEFAULT_INFO, **{k: source_meta[k] for k in INFO_KEYS if k in source_meta}}
    info.update(dict(item.split("=", 1) for item in args.info))
    info["evaluation"] = evaluation(args.evaluation, args.baseline, args.evaluation_command)
    info["speed"] = {"lr_mpx_per_cpu_s": args.speed, "threads": args.speed_threads, "command": args.speed_command}
    extra = json.loads(source_meta["extra"]) if "extra" in source_meta else None
    output = args.output or WEIGHTS / f"{args.name}.safetensors"
    save_model(output, network, name=args.name, extra=extra, info=info, overwrite=True)
    shipped, _ = load_network(output)
    assert all(torch.equal(a, b) for a, b in zip(shipped.state_dict().values(), network.state_dict().values(), strict=True))
    print(f"wrote {output} ({output.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
