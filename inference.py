"""The published FAT ``inference.py`` command line, running ``fatsr upscale``.

    python inference.py --test_img DIR --model_path MODEL --save_dir OUT [--no-cuda] [--fp16]

writes ``OUT/<stem>.png`` for every image in DIR, on CUDA when available unless --no-cuda.
Unlike the published script it never replaces existing outputs unless --overwrite is given.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    """Parse the published flags and run ``fatsr upscale`` with them."""
    parser = argparse.ArgumentParser(
        description="Upscale a folder of images with FAT (same as `fatsr upscale`).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--test_img", default="./datasets/test/", help="folder (or file) of input images")
    parser.add_argument("--model_path", default="./checkpoints/best.pth", help="model file (.pth or .safetensors)")
    parser.add_argument("--save_dir", default="./result/version1/", help="output folder; files are <stem>.png")
    parser.add_argument("--no-cuda", action="store_true", help="run on the CPU even if CUDA is available")
    parser.add_argument("--fp16", action="store_true", help="half precision (CUDA only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's random hashing")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = parser.parse_args(argv)

    import torch

    from fatsr.cli import main as fatsr_main

    device = "cuda" if torch.cuda.is_available() and not args.no_cuda else "cpu"
    command = [
        "upscale",
        f"--test_img={args.test_img}",
        f"--model={args.model_path}",
        f"--save_dir={args.save_dir}",
        f"--device={device}",
        f"--seed={args.seed}",
    ]
    if args.fp16:
        command.append("--fp16")
    if args.overwrite:
        command.append("--overwrite")
    return fatsr_main(command)


if __name__ == "__main__":
    raise SystemExit(main())
