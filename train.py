"""The published training script's command line, kept working: ``python train.py [flags]``
runs ``fatsr train`` (defaults: --data_dir ./datasets/train with HR/ and LR/, --save_dir
./checkpoints/v1, --batch_size 2, --lr 1e-4, --epochs 100, the published-size network)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # runs from a checkout too

from fatsr.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
