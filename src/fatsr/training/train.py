"""The training loop: FAT on random LR/HR crops in [-1, 1] (or HR crops whose LR each batch
gets from a degradation on the device), Adam(W) with warm-up and a schedule, EMA weights
validated by PSNR-Y/SSIM-Y, exact resume, DDP across processes started by torchrun.

Entry point: :func:`train` with a :class:`~fatsr.training.config.TrainConfig`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import yaml
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from fatsr.errors import ArgumentError, FatsrError
from fatsr.inference.resample import bicubic
from fatsr.io import atomic_write, remove_stale_parts
from fatsr.models import registry
from fatsr.models.contract import Network, SizeRule
from fatsr.models.runtime import runtime
from fatsr.training import checkpoint
from fatsr.training.config import TrainConfig, default_preset, default_workers, to_dict, write_yaml
from fatsr.training.distributed import BatchSampler, Dist, any_true, barrier, mean_over_processes, setup, teardown
from fatsr.training.ema import EMA
from fatsr.training.report import MetricsLog, TensorBoard, plot_progress

if TYPE_CHECKING:
    from fatsr.data.datasets import ValDataset
    from fatsr.values import ValueMapping

LAST = "last.pt"
BEST = "best.safetensors"
MODEL = "model.safetensors"
LAST_MODEL = "last.safetensors"  # the latest EMA weights: at every validation and when the run stops
TIMED_STEPS = 5  # the time per step is said after this many steps (the first, warming up, not counted)
DEGRADATION = "degradation.yaml"  # the resolved preset of --degradation


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    save_dir: Path
    steps: int
    model_path: Path | None  # None on processes other than rank 0
    best_psnr: float | None
    skipped_steps: int


def train(config: TrainConfig) -> TrainResult:
    """Run (or continue) the training that ``config`` describes; see :class:`Trainer`."""
    config.validate()
    layout = setup(config.device)
    try:
        result = Trainer(config, layout).run()
        barrier(layout)  # processes leave together: rank 0 validates and exports last
        return result
    finally:
        teardown(layout)


# --- pieces ----------------------------------------------------------------------------------


def build_network(config: TrainConfig) -> Network:
    """The preset's network with ``config.network`` overrides, for ``config.scale``."""
    channels = {"in_channels": len(config.bands), "out_channels": len(config.bands)} if config.bands else {}
    try:
        # the trainer has resolved a preset of None by the device (default_preset)
        return registry.build_network(config.preset or "fat", config.scale, **config.network, **channels)
    except (TypeError, ValueError) as exc:
        if not config.network and not channels:
            raise
        raise FatsrError(
            f"network overrides {config.network} do not give a valid {config.preset} network ({exc})"
        ) from None


def band_mapping(config: TrainConfig) -> ValueMapping | None:
    """The bands and value mapping of a ``--bands`` run (None without), from the first
    training file."""
    from fatsr.data.datasets import _layout, find_images
    from fatsr.data.datasets import band_mapping as for_data

    folder = _layout(Path(config.data_dir[0]))[0]
    files = find_images(folder) if folder.is_dir() else []
    if not config.bands:
        if files:
            _needs_bands(files[0])
        return None
    if not files:
        raise FatsrError(f"{folder}: no rasters to train on")
    return for_data(files[0], tuple(config.bands), config.value_range)


def _needs_bands(path: Path) -> None:
    """Refuse, before any work, training data that only ``--bands`` can read (e.g. int16 or
    6-band GeoTIFFs), saying what to give."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                count, dtype = ds.count, ds.dtypes[0] if ds.count else "uint8"
    except RasterioError:
        return
    if count not in (1, 3, 4) or dtype not in ("uint8", "uint16"):
        hint = "" if dtype in ("uint8", "uint16") else " and {range} (the values mapped to 0..1)"
        raise ArgumentError(
            f"{path}: a {count}-band {dtype} raster; choose the bands to train on with {{arg}}{hint}",
            "bands",
            (3, 2, 1),
            range=("value_range", "LO HI"),
        )


def data_record(folders: list[str], files: list[Path]) -> str:
    """What a model file says about its training data: each folder by its name (never its path),
    its image count and a hash of its files' names and sizes (SHA-256, first 12 hex digits)."""
    parts = []
    for folder in folders:
        base = Path(folder).resolve()
        mine = sorted(
            (path.relative_to(base).as_posix(), path.stat().st_size)
            for path in (f.resolve() for f in files)
            if path.is_relative_to(base)
        )
        digest = hashlib.sha256(json.dumps(mine).encode()).hexdigest()[:12]
        parts.append(f"{base.name} ({len(mine)} files, SHA-256 of their names and sizes {digest})")
    return ", ".join(parts)


def duration(seconds: float) -> str:
    """``1 h 05 min``, ``4 min 10 s`` or ``12 s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def describe(network_config: dict | None) -> str:
    """A short text of a network configuration for error messages."""
    if not network_config:
        return "unknown"
    return ", ".join(f"{k} {v}" for k, v in network_config.items() if k not in ("in_channels", "out_channels"))


def check_patch_size(rule: SizeRule, patch_size: int) -> None:
    """LR patches must be sides the network computes on as they are (its size rule)."""
    if not rule.fits(patch_size, patch_size):
        multiple, smallest = rule.multiple_of, rule.minimum
        raise ArgumentError(
            f"{{arg}} does not fit this network: LR patches must be a multiple of {multiple} and at least "
            f"{smallest} pixels; use e.g. {max(smallest, patch_size // multiple * multiple)}",
            "patch_size",
            patch_size,
        )


@dataclass
class LRFactor:
    """Multiplier of the base learning rate at a step: linear warm-up, then constant, cosine
    (to 0 at ``total``) or multistep (times ``gamma`` at each milestone)."""

    schedule: str
    total: int
    warmup: int
    milestones: list[int]
    gamma: float

    def __call__(self, step: int) -> float:
        factor = 1.0
        if self.schedule == "cosine":
            progress = min(1.0, max(0, step - self.warmup) / max(1, self.total - self.warmup))
            factor = 0.5 * (1.0 + math.cos(math.pi * progress))
        elif self.schedule == "multistep":
            factor = self.gamma ** sum(step >= m for m in self.milestones)
        if step < self.warmup:
            factor *= (step + 1) / self.warmup
        return factor


def make_optimizer(network: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return kind(network.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: ``auto`` = bf16 on CUDA, none on the CPU; fp16/bf16 need CUDA."""
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "none"
    if amp == "none":
        return None
    if device.type != "cuda":
        raise ArgumentError("{arg} needs a CUDA device; use {none} on the CPU", "amp", amp, none=("amp", "none"))
    return torch.bfloat16 if amp == "bf16" else torch.float16


def training_step(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr: Tensor,
    hr: Tensor,
    *,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float = 0.0,
) -> tuple[dict[str, Tensor], bool]:
    """One optimisation step on a batch in [-1, 1]; returns the detached loss terms (``loss``
    = weighted total) and whether the gradients were finite. Non-finite gradients skip the
    update (with fp16 the scaler skips it and lowers its scale)."""
    autocast = torch.autocast(lr.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    with autocast:
        sr = model(lr)
    total, terms = loss_fn(sr.float(), hr)
    (scaler.scale(total) if scaler is not None else total).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    finite = bool(torch.isfinite(norm))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    elif finite:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"loss": total.detach(), **{k: v.detach() for k, v in terms.items()}}, finite


def to_uint8(img: Tensor) -> np.ndarray:
    """CHW float in [0, 1] -> HWC uint8, clamped and rounded."""
    return img.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def evaluate(upscale: Callable[[Tensor], Tensor], samples: ValDataset, scale: int) -> dict[str, float]:
    """Mean PSNR-Y and SSIM-Y (border = scale, 8-bit rounded) of ``upscale`` (NCHW [0, 1] in
    and out) over validation samples."""
    from fatsr.evaluation.metrics import psnr, ssim

    psnrs, ssims = [], []
    for i in range(len(samples)):
        sample = samples[i]
        sr = to_uint8(upscale(sample["lr"].unsqueeze(0))[0])
        hr = to_uint8(sample["hr"])
        psnrs.append(psnr(sr, hr, border=scale))
        ssims.append(ssim(sr, hr, border=scale))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}


class StopRequest:
    """SIGINT / SIGTERM ask the loop to stop between two steps (it then saves last.pt);
    a second signal interrupts at once."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.requested = False
        self._say = say
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked data worker: keep serving the last batches
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._say(f"{signal.Signals(signum).name}: stopping at the end of this step to save {LAST} (again: abort now)")


# --- the trainer -----------------------------------------------------------------------------


class Trainer:
    """Owns the network, its EMA, optimiser, data and run folder of one training run.

    Only rank 0 writes files, logs and validates. Every random draw comes from generators
    seeded by ``config.seed`` (weights and global RNG), ``(seed, epoch)`` (sample order),
    ``(seed, epoch, index)`` (crops, in the dataset) or ``(seed, step, index in the global batch)``
    (degradation),
    and all their states are checkpointed or derived from the step, so a resumed run continues
    exactly as an uninterrupted one.
    """

    def __init__(self, config: TrainConfig, layout: Dist) -> None:
        from fatsr.data import TrainDataset, ValDataset
        from fatsr.data.degrade_batch import BatchDegrader
        from fatsr.data.degrade_presets import load_preset
        from fatsr.losses import FATLoss

        self.layout = layout
        self.device = layout.device
        chosen = config.preset is None
        config = replace(
            config,
            preset=config.preset or default_preset(self.device.type),
            workers=default_workers() if config.workers is None else config.workers,
        )
        self.config = config
        if chosen and config.preset == "compact":
            self._say(
                "no --preset: training the compact FAT network (the design the built-in models started from), "
                "which fits a CPU; the published network is --preset fat (10.2 M parameters, for a GPU)"
            )
        self.save_dir = Path(config.save_dir)
        if config.batch_size % layout.world:
            raise ArgumentError(
                f"{{arg}} (the global batch) must be divisible by the {layout.world} processes",
                "batch_size",
                config.batch_size,
            )
        self.amp_dtype = resolve_amp(config.amp, self.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        checkpoint.seed_everything(config.seed)

        self.network = build_network(config).to(self.device)
        self.architecture = registry.of(self.network).name
        self.lsh = torch.Generator().manual_seed(config.seed)  # LSH rotations, identical on every rank

        self.degradation_preset = load_preset(config.degradation) if config.degradation else None
        self.degrader = BatchDegrader(self.degradation_preset, config.scale) if self.degradation_preset else None
        self.mapping = band_mapping(config)
        self.train_set = TrainDataset(
            config.data_dir, config.scale, patch_size=config.patch_size, augment=config.augment,
            cache=config.cache, seed=config.seed, hr_only=self.degrader is not None, mapping=self.mapping,
            resize=config.sampling == "resize", scale_augment=config.scale_augment,
        )  # fmt: skip
        for side in set(self.train_set.lr_size):
            check_patch_size(registry.size_rule(self.network), side)
        self.steps_per_epoch = len(self.train_set) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ArgumentError(
                f"{', '.join(config.data_dir)} hold(s) {len(self.train_set)} training images, fewer than {{arg}}; "
                "add images or lower the batch size",
                "batch_size",
                config.batch_size,
            )
        self.total_steps = config.steps or (config.epochs or 100) * self.steps_per_epoch
        self.val_set = (
            ValDataset(config.val_dir, config.scale, self.mapping) if config.val_dir and layout.main else None
        )
        self.loss_fn = FATLoss(
            config.losses, vgg_weights=config.vgg_weights, published_normalization=config.published_normalization,
        ).to(self.device)  # fmt: skip

        self.optimizer = make_optimizer(self.network, config)
        self.lr_factor = LRFactor(
            config.schedule, self.total_steps, config.warmup_steps, list(config.milestones), config.gamma
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.ema = EMA(self.network, config.ema_decay)

        self.step = 0
        self.best_psnr: float | None = None
        self.last_val_step = -1
        self.skipped_steps = 0
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0  # process time of the training steps (data included, validation not)
        self._budget_said = False
        self._timed: list[float] = []  # wall time of this process's first steps (_time_steps)
        self._window: dict[str, float] = {}  # loss sums since the last log record
        self._window_steps = 0
        resume = self._resume_path()
        loaded = self._load(resume) if resume is not None else None  # checks it; writes nothing
        self._prepare_save_dir(continues=resume if loaded == "checkpoint" else None)
        if resume is not None:
            self._say(f"resumed {resume} at step {self.step}" if loaded == "checkpoint" else
                      f"initialised the weights from {resume}; training starts at step 0")  # fmt: skip
        self.log = MetricsLog(self.save_dir / "metrics.jsonl", resume_step=self.step) if layout.main else None
        self.tensorboard = TensorBoard(self.save_dir / "tensorboard") if config.tensorboard and layout.main else None

        # torch.compile of a module returns a module (typed as any callable)
        model = cast(nn.Module, torch.compile(self.network)) if config.compile else self.network
        if layout.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        self.model = model

    # -- run folder and checkpoints --

    def _resume_path(self) -> Path | None:
        resume = self.config.resume
        if resume is None:
            return None
        if resume == "auto":
            last = self.save_dir / LAST
            return last if last.is_file() else None
        return Path(resume)

    def holds_run(self) -> bool:
        return any((self.save_dir / name).is_file() for name in (LAST, "metrics.jsonl", MODEL))

    def _prepare_save_dir(self, continues: Path | None) -> None:
        """Refuse to replace a run unless asked (``--overwrite``) or continuing a checkpoint of
        that very run (``continues``, a file in the run folder); then set the folder up."""
        fresh = continues is None or continues.resolve().parent != self.save_dir.resolve()
        if fresh and self.holds_run() and not self.config.overwrite:
            how = "continue it with {resume}" if not self.config.resume else (
                "{resume} does not continue it (only its own last.pt or step_*.pt do)")  # fmt: skip
            raise ArgumentError(
                f"{{arg}} already holds a run; {how}; start afresh there with {{overwrite}}, or choose another folder",
                "save_dir",
                str(self.save_dir),
                resume=("resume", self.config.resume or "auto"),
                overwrite=("overwrite", True),
            )
        if self.layout.main:
            try:
                self.save_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ArgumentError(
                    f"cannot create {{arg}}: {exc.strerror or exc}", "save_dir", self.save_dir
                ) from None
            remove_stale_parts(self.save_dir)
            write_yaml(self.config, self.save_dir / "config.yaml")
            if fresh:
                for name in (LAST, "metrics.jsonl", "progress.png", BEST, MODEL, LAST_MODEL, DEGRADATION):
                    (self.save_dir / name).unlink(missing_ok=True)
            if self.degradation_preset is not None:
                with atomic_write(self.save_dir / DEGRADATION, overwrite=True) as tmp:
                    tmp.write_text(yaml.safe_dump(self.degradation_preset, sort_keys=False), encoding="utf-8")

    def _state(self) -> dict[str, Any]:
        scheduler = self.scheduler.state_dict()
        scheduler["lr_lambdas"] = [None] * len(self.optimizer.param_groups)  # the shape comes from the config
        return {
            "architecture": self.architecture,
            "network_config": self.network.config.to_dict(),
            "config": to_dict(self.config),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "position": self.step % self.steps_per_epoch,
            "total_steps": self.total_steps,
            "model": self.network.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "lsh_generator": self.lsh.get_state(),
            "rng": checkpoint.rng_state(),
            "best_psnr": self.best_psnr,
            "last_val_step": self.last_val_step,
            "skipped_steps": self.skipped_steps,
            "train_seconds": self.train_seconds,
            "train_cpu_seconds": self.train_cpu_seconds,
        }

    def _save(self, name: str = LAST) -> None:
        if self.layout.main:
            checkpoint.save(self.save_dir / name, self._state())

    def _load(self, path: Path) -> str:
        """Load a training checkpoint ("checkpoint") or a model's weights ("weights")."""
        if not path.is_file():
            raise ArgumentError("{arg}: no such file; give a last.pt or step_*.pt of a fatsr run", "resume", path)
        state = checkpoint.read(path) if path.suffix != ".safetensors" else None
        if not checkpoint.is_checkpoint(state):
            self._load_weights_only(path)
            return "weights"
        if state.get("architecture") != self.architecture or state["network_config"] != self.network.config.to_dict():
            raise ArgumentError(
                f"{path} is a checkpoint of another network ({describe(state.get('network_config'))}), "
                f"not of this run's ({describe(self.network.config.to_dict())}); "
                "pass its {preset}/{scale}/{network} or use another {arg}",
                "save_dir",
                None,
                preset=("preset", None),
                scale=("scale", None),
                network=("network", None),
            )
        self.network.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.base_lrs = [self.config.lr for _ in self.optimizer.param_groups]
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.lsh.set_state(state["lsh_generator"])
        checkpoint.set_rng_state(state["rng"])
        self.step = int(state["step"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * self.lr_factor(self.step)
        self.best_psnr = state["best_psnr"]
        self.last_val_step = int(state["last_val_step"])
        self.skipped_steps = int(state["skipped_steps"])
        self.train_seconds = float(state["train_seconds"])
        self.train_cpu_seconds = float(state.get("train_cpu_seconds", 0.0))
        return "checkpoint"

    def _load_weights_only(self, path: Path) -> None:
        """Start from the weights of a model file or published state dict (as the published
        ``--resume`` did): optimiser and step start afresh. A model of the same network at
        another scale gives every tensor but the upsampler's (e.g. x2 started from a x4 model); a model
        with fewer Swin layers or a narrower MLP grows into this one (:func:`fatsr.models.fat.grown`)."""
        from dataclasses import replace

        from fatsr.models.fat import FAT, FATConfig, grown
        from fatsr.models.files import load_network

        loaded, _ = load_network(path)
        own_config = self.network.config
        other_scale = replace(loaded.config, scale=own_config.scale) == own_config
        if isinstance(loaded, FAT) and isinstance(own_config, FATConfig) and loaded.config != own_config:
            before = loaded.config
            with contextlib.suppress(ValueError):  # more Swin layers or a wider MLP: the same function, more room
                loaded = grown(loaded, own_config)
                self._say(
                    f"grew {path}: {before.num_layers} -> {own_config.num_layers} Swin layers per block, MLP ratio "
                    f"{before.mlp_ratio:g} -> {own_config.mlp_ratio:g}; the added weights start where they add nothing"
                )
        if loaded.config != own_config and not other_scale:
            raise ArgumentError(
                f"{path} holds weights of another network ({describe(loaded.config.to_dict())}), not of this run's "
                f"({describe(self.network.config.to_dict())}); pass its {{arg}}/{{scale}}",
                "preset",
                None,
                scale=("scale", None),
            )
        own = self.network.state_dict()
        weights = {k: v for k, v in loaded.state_dict().items() if k in own and own[k].shape == v.shape}
        self.network.load_state_dict(weights, strict=False)
        self.ema.module.load_state_dict(weights, strict=False)
        if len(weights) < len(own):
            fresh = sorted(k.rsplit(".", 1)[0] for k in own if k not in weights)
            self._say(
                f"{path} is a x{loaded.config.scale} model: took {len(weights)} of {len(own)} tensors, "
                f"{', '.join(dict.fromkeys(fresh))} start from random values"
            )

    # -- messages and records --

    def _say(self, message: str) -> None:
        if self.layout.main:
            tqdm.write(message)

    def _record(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.add(record)
        if self.tensorboard is not None:
            self.tensorboard.add(record)

    # -- validation and export --

    def _upscaler(self) -> Callable[[Tensor], Tensor]:
        from fatsr.models.wrapper import SRModel

        wrapped = SRModel(self.ema.module, name="ema", seed=self.config.seed)

        @torch.inference_mode()
        def upscale(lr: Tensor) -> Tensor:
            return wrapped(lr.to(self.device)).float()

        return upscale

    def _validate(self) -> None:
        if self.val_set is None:
            return
        self.last_val_step = self.step
        scores = evaluate(self._upscaler(), self.val_set, self.config.scale)
        improved = self.best_psnr is None or scores["psnr"] > self.best_psnr
        self._say(
            f"step {self.step}: validation PSNR-Y {scores['psnr']:.3f} dB, SSIM-Y {scores['ssim']:.4f}"
            + (" (best)" if improved else f" (best {self.best_psnr:.3f} dB)")
        )
        if improved:
            self.best_psnr = scores["psnr"]
            self._export(self.save_dir / BEST, extra={"step": self.step, "val_psnr_y": scores["psnr"]})
        self._export(self.save_dir / LAST_MODEL, extra={"step": self.step, "val_psnr_y": scores["psnr"]})
        self._record({
            "kind": "val", "step": self.step, **scores, "time": round(self.train_seconds, 3),
            "cpu_time": round(self.train_cpu_seconds, 3),
        })  # fmt: skip
        if self.log is not None:
            plot_progress(self.log, self.save_dir / "progress.png")

    def _export(self, path: Path, extra: dict[str, Any]) -> None:
        from fatsr.models.files import DEFAULT_INFO, save_model

        config = self.config
        name = f"{self.architecture} {config.preset} x{config.scale} ({self.save_dir.name})"
        info = {
            **DEFAULT_INFO,
            "training_data": f"{len(self.train_set)} images in "
            + data_record(config.data_dir, [f for pair in self.train_set.pairs for f in (pair.hr, pair.lr) if f]),
            "degradation": f"{Path(config.degradation).name} preset (degradation.yaml of the run)" if config.degradation
            else f"bicubic x{config.scale} (antialiased, rounded to the image's bit depth)",
            "training": f"fatsr train: {self.step} steps of batch {config.batch_size}, LR crops {config.patch_size}, "
            f"{self.train_cpu_seconds / 3600:.2f} CPU hours in steps",
        }  # fmt: skip
        mapping = {"value_mapping": self.mapping.to_json()} if self.mapping else {}
        if self.mapping:
            info["bands"] = f"bands {','.join(map(str, self.mapping.bands))} of the training rasters"
            info["value_range"] = f"the value_mapping entry ({self.mapping.method})"
        info.update(config.model_info)
        save_model(path, self.ema.module, name=name, extra=extra, info=info, overwrite=True, metadata=mapping)

    def _finish(self) -> Path:
        model_path = self.save_dir / MODEL
        best = self.save_dir / BEST
        if self.val_set is not None and best.is_file():
            with atomic_write(model_path, overwrite=True) as tmp:
                shutil.copyfile(best, tmp)
        else:
            self._export(model_path, extra={"step": self.step})
        if self.log is not None and self.log.records:
            plot_progress(self.log, self.save_dir / "progress.png")
        which = " with the best validation PSNR" if best.is_file() else ""
        self._say(f"exported the EMA weights{which} to {model_path}")
        return model_path

    # -- the loop --

    def _batches(self, epoch: int, start: int) -> Iterator[dict[str, Tensor]]:
        self.train_set.set_epoch(epoch)
        sampler = BatchSampler(len(self.train_set), self.config.batch_size, self.layout, self.config.seed, epoch, start)
        loader = DataLoader(
            self.train_set, batch_sampler=sampler, num_workers=self.config.workers or 0,
            pin_memory=self.device.type == "cuda", generator=torch.Generator(),
        )  # fmt: skip
        return iter(loader)

    def _lr_batch(self, batch: dict[str, Tensor], hr: Tensor) -> Tensor:
        """The batch's LR in [0, 1]: loaded, or made from ``hr`` on the device by the degradation
        with draws from (seed, step) and, per image, its place in the global batch."""
        from fatsr.data.degrade_batch import degradation_rngs

        if self.degrader is None:
            return batch["lr"].to(self.device, non_blocking=True)
        local = hr.shape[0]
        return self.degrader(hr, *degradation_rngs(self.config.seed, self.step, self.layout.rank * local, local))

    def _target(self, hr: Tensor) -> Tensor:
        """What the loss compares with: the HR, or with a preset's ``usm_target`` (Real-ESRGAN)
        the HR unsharp-masked as the degradation's first step does."""
        from fatsr.data.degrade import usm_sharpen

        preset = self.degradation_preset
        return usm_sharpen(hr, **preset["usm"]) if preset is not None and preset["usm_target"] else hr

    def _one_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        hr = batch["hr"].to(self.device, non_blocking=True)
        lr = self._lr_batch(batch, hr) * 2 - 1
        hr = self._target(hr) * 2 - 1
        self.model.train()
        with runtime(generator=self.lsh):
            terms, finite = training_step(
                self.model, self.loss_fn, self.optimizer, lr, hr,
                amp_dtype=self.amp_dtype, scaler=self.scaler, grad_clip=self.config.grad_clip,
            )  # fmt: skip
        self.scheduler.step()
        self.ema.update(self.network)
        self.step += 1
        values = {k: float(v) for k, v in terms.items()}
        if not finite and (self.scaler is None or not math.isfinite(values["loss"])):
            self.skipped_steps += 1
            self._say(f"warning: step {self.step}: non-finite loss or gradients, update skipped "
                      f"({self.skipped_steps} skipped so far)")  # fmt: skip
        return values

    def _log_start(self) -> None:
        used = sum(p.numel() for p in self.network.parameters())
        threads = torch.get_num_threads()
        self._say(
            f"training {self.architecture} '{self.config.preset}' x{self.config.scale} ({used / 1e6:.2f} M parameters) on "
            f"{len(self.train_set)} images: {self.total_steps} steps of batch {self.config.batch_size} "
            f"({self.steps_per_epoch} per epoch) on {self.device}"
            # the weights' last bits depend on the thread count (torch's default follows the usable CPUs)
            + (f" with {threads} thread{'s' * (threads > 1)}" if self.device.type == "cpu" else "")
            + f", {self.config.workers} data loading process{'es' * (self.config.workers != 1)}"
            + (f" x{self.layout.world} processes" if self.layout.world > 1 else "")
            + (f"; LR made per batch by the '{self.config.degradation}' degradation" if self.degrader else "")
        )
        if self.val_set is not None and not (self.log and self.log.of_kind("bicubic")):
            scores = evaluate(partial(bicubic, scale=self.config.scale), self.val_set, self.config.scale)
            self._say(f"bicubic on the validation set: PSNR-Y {scores['psnr']:.3f} dB, SSIM-Y {scores['ssim']:.4f}")
            self._record({"kind": "bicubic", "step": 0, **scores})

    def run(self) -> TrainResult:
        """Train up to ``total_steps``; on SIGINT/SIGTERM save last.pt and raise KeyboardInterrupt."""
        self._log_start()
        bar = tqdm(
            total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
            disable=not (self.layout.main and self.config.progress),
        )  # fmt: skip
        with StopRequest(self._say) as stop, bar:
            while self.step < self.total_steps and not self._stops_here():
                epoch, first = divmod(self.step, self.steps_per_epoch)
                batches = self._batches(epoch, first)
                for position in range(first, min(self.steps_per_epoch, first + self.total_steps - self.step)):
                    if self._stops_here():
                        break
                    started, cpu_started = time.perf_counter(), time.process_time()
                    try:
                        batch = next(batches)
                    except RuntimeError:  # DataLoader workers killed by the same Ctrl-C
                        if not stop.requested:
                            raise
                    if any_true(stop.requested, self.layout):  # every process stops at the same step
                        self._save()
                        if self.layout.main:
                            self._export(self.save_dir / LAST_MODEL, extra={"step": self.step})
                        self._say(
                            f"saved {self.save_dir / LAST} and {LAST_MODEL} at step {self.step}; continue with "
                            f"--resume auto; `fatsr upscale --model {self.save_dir}` runs the weights saved so far"
                        )
                        raise KeyboardInterrupt
                    values = self._one_step(batch)
                    self._time_steps(time.perf_counter() - started)
                    self.train_seconds += time.perf_counter() - started
                    self.train_cpu_seconds += time.process_time() - cpu_started
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                    self._log_train(values, epoch)
                    self._periodic(epoch_end=position + 1 == self.steps_per_epoch, epoch=epoch)
        if self.layout.main and self.last_val_step != self.step:
            self._validate()
        self._save()
        model_path = self._finish() if self.layout.main else None
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.skipped_steps:
            self._say(f"warning: {self.skipped_steps} steps were skipped for non-finite loss or gradients")
        return TrainResult(self.save_dir, self.step, model_path, self.best_psnr, self.skipped_steps)

    def _time_steps(self, seconds: float) -> None:
        """After :data:`TIMED_STEPS` steps of this process (or the last one), say the mean time per
        step (the first, warming up, left out) and how long all the run's steps take at that pace."""
        self._timed.append(seconds)
        if len(self._timed) != TIMED_STEPS and self.step != self.total_steps or len(self._timed) > TIMED_STEPS:
            return
        timed = self._timed[1:] or self._timed
        per_step = sum(timed) / len(timed)
        left = self.total_steps - self.step
        validations = "" if self.val_set is None else ", validation not counted"
        self._say(
            f"time per step: {per_step:.3g} s (mean of {len(timed)} step{'s' * (len(timed) > 1)}); "
            f"{self.total_steps} steps take about {duration(per_step * self.total_steps)}"
            + (f", {duration(per_step * left)} from now" if left else "")
            + validations
        )

    def _stops_here(self) -> bool:
        """Whether the run stops at this step: ``stop_at`` reached, or ``cpu_budget_min`` used up
        (on any process: all stop at the same step)."""
        if self.config.stop_at is not None and self.step >= self.config.stop_at:
            return True
        budget = self.config.cpu_budget_min
        spent = any_true(bool(budget) and self.train_cpu_seconds >= 60 * budget, self.layout)
        if spent and self.step < self.total_steps and not self._budget_said:
            self._budget_said = True
            self._say(f"CPU budget of {budget:g} min used up at step {self.step} "
                      f"({self.train_cpu_seconds:.0f} CPU s, {self.train_seconds:.0f} s of wall time in steps)")  # fmt: skip
        return spent

    def _log_train(self, values: dict[str, float], epoch: int) -> None:
        """Add a step's loss terms to the window; every ``log_every`` steps record their means."""
        for k, v in values.items():
            self._window[k] = self._window.get(k, 0.0) + v
        self._window_steps += 1
        if self.step % self.config.log_every and self.step != self.total_steps:
            return
        means = mean_over_processes({k: v / self._window_steps for k, v in self._window.items()}, self.layout)
        self._window, self._window_steps = {}, 0
        self._record({
            "kind": "train", "step": self.step, "epoch": epoch, "lr": self.config.lr * self.lr_factor(self.step - 1),
            **means, "skipped": self.skipped_steps, "time": round(self.train_seconds, 3),
            "cpu_time": round(self.train_cpu_seconds, 3),
        })  # fmt: skip

    def _periodic(self, epoch_end: bool, epoch: int) -> None:
        config = self.config
        if self.layout.main and self.step % config.val_every == 0 and self.step < self.total_steps:
            self._validate()
        if self.step % config.save_every == 0 and self.step < self.total_steps:
            self._save()
        keep = config.keep_every and self.step % config.keep_every == 0
        cycle = config.save_cycle and epoch_end and (epoch + 1) % config.save_cycle == 0
        if keep or cycle:
            self._save(f"step_{self.step:06d}.pt")
