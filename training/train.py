"""Train, calibrate and export the bundled model: ``python -m training.train --data DIR --out DIR``.

Reproduces resources/models/lunglens-cxr.{onnx,json} from scratch (seeded) on a 2-core CPU.
``--smoke`` runs the whole pipeline on a few batches in about a minute (used by the tests).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inference.preprocess import PreprocessSpec, preprocess

from inference import metrics as M
from .augment import augment_batch
from .data import list_items, list_site_items, preload, read_validation_patients, split_patients, write_validation_patients
from .export import OUTPUTS, TRAINING_DATA, export_onnx, sha256_of, write_manifest
from inference.profile import SUFFIX as PROFILE_SUFFIX

from . import site_profile
from .model import PADDINGS, Ensemble, ExportWrapper, LungLensNet, count_parameters
from .model_card import main as write_model_card

NAME = "lunglens-cxr"
VERSION = "2.6.0"
TRAINING_DIR = Path(__file__).resolve().parent
DEFAULT_VAL_LIST = TRAINING_DIR / "validation_patients.txt"
DEFAULT_CHECKPOINT = TRAINING_DIR / "checkpoints" / f"{NAME}.pt"
# Input side -> network shape. Both end at a 14x14 map (total stride 16 or 8).
ARCHS = {
    224: {"widths": (16, 32, 64, 128, 192), "blocks": (False, True, True, True), "strides": (2, 2, 2, 1)},
    112: {"widths": (16, 32, 64, 128, 192), "blocks": (False, True, True, False), "strides": (2, 2, 1, 1)},
}

log = logging.getLogger("training")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="folder holding train/{NORMAL,PNEUMONIA}")
    p.add_argument("--out", type=Path, required=True, help="where the .onnx and .json go")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--ema-decay", type=float, default=0.995)
    p.add_argument("--seed", type=int, nargs="+", default=[1122, 2024, 3031],
                   help="one network per seed, averaged in one graph (the shipped model: three, experiment O)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 1 is as fast as 2 on a shared 2-core machine and keeps runs comparable")
    p.add_argument("--val-patients", type=Path, default=DEFAULT_VAL_LIST,
                   help="validation patient list; created (seeded) if missing")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--runs", type=Path, default=TRAINING_DIR / "runs", help="per-run log folder")
    p.add_argument("--site", type=Path, default=None,
                   help="a clinic's labelled films (NORMAL/, PNEUMONIA/), default <data>/site-sample: "
                        "logged each epoch and used for the shipped calibration, never trained on")
    p.add_argument("--size", type=int, choices=sorted(ARCHS), default=112,
                   help="input side in pixels (the network is shaped to end at a 14x14 map)")
    p.add_argument("--aug", choices=("full", "light", "blur"), default="light",
                   help="full: photometric + geometric augmentation; light (shipped, experiment F): geometric "
                        "and de-quantization noise only; blur: light plus the blur or sharpening of full")
    p.add_argument("--normalization", choices=("histogram_equalization", "local_equalization"),
                   default="histogram_equalization",
                   help="the app's normalization the model is trained for: histogram_equalization (shipped) or "
                        "local_equalization, CLAHE after it (experiment X)")
    p.add_argument("--class-weight", choices=("balanced", "none"), default="balanced",
                   help="balanced (shipped): each class contributes half of the loss; none: every film weighs the same")
    p.add_argument("--focal", type=float, default=0.0, metavar="GAMMA",
                   help="focal loss: each film's class-balanced BCE times (1 - p_true)^GAMMA; 0 (default) = plain BCE")
    p.add_argument("--geometry", choices=("standard", "strong", "aspect", "aspect-wide"), default="aspect",
                   help="geometric augmentation ranges (training/augment.py GEOMETRY); aspect is the shipped recipe")
    p.add_argument("--erase", type=float, default=0.0, metavar="P",
                   help="random erasing: one rectangle of the input set to the mean with probability P (default off)")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="mixup of augmented images within each batch, lambda ~ Beta(ALPHA, ALPHA) per batch; "
                        "0 (default) = off, the recipe of the shipped model")
    p.add_argument("--subtype", type=float, default=0.5, metavar="WEIGHT",
                   help="auxiliary task: a second linear unit on the pooled features tells viral from bacterial "
                        "pneumonia (from the file names), its BCE over the pneumonia films added with this weight "
                        "(0.5, shipped: experiment AC); training only, the exported network is unchanged; 0 = off")
    p.add_argument("--padding", choices=PADDINGS, default="zeros",
                   help="what the convolutions read beyond the film's edge: zeros, or the edge pixel "
                        "(replicate: a uniform film then gives a flat attribution map)")
    p.add_argument("--normal2-weight", type=float, default=1.0, metavar="W",
                   help="a normal film of the NORMAL2 series counts W times as much as one of the IM series, "
                        "the normal class's share of the loss unchanged (experiment AF); 1 (default) = off")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--smoke", action="store_true", help="a few batches of real images, end to end")
    p.add_argument("--finalize", type=Path, nargs="+", default=None, metavar="LAST_EMA_PT",
                   help="skip training: export and describe the EMA weights saved by runs "
                        "(training/runs/<stamp>/last_ema.pt); several make an ensemble (mean logit)")
    args = p.parse_args(argv)
    if args.focal > 0 and args.mixup > 0:
        p.error("--focal and --mixup do not combine (the mixup loss has no focal term)")
    if args.subtype > 0 and args.mixup > 0:
        p.error("--subtype and --mixup do not combine (a mixed film has no one subtype)")
    if args.normal2_weight != 1.0 and args.mixup > 0:
        p.error("--normal2-weight and --mixup do not combine (the mixup loss weighs classes only)")
    if args.normal2_weight <= 0:
        p.error("--normal2-weight must be positive")
    return args


def setup_logging(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    log.setLevel(logging.INFO)
    log.handlers.clear()
    for h in (logging.FileHandler(run_dir / "train.log"), logging.StreamHandler(sys.stdout)):
        h.setFormatter(fmt)
        log.addHandler(h)


def validation_inputs(images: np.ndarray, spec: PreprocessSpec) -> torch.Tensor:
    """Validation images through the app's own preprocess() (not the torch re-implementation)."""
    return torch.from_numpy(np.concatenate([preprocess(img, spec) for img in images]))


@torch.no_grad()
def predict_logits(model: LungLensNet, x: torch.Tensor, hflip: bool = False, batch: int = 128) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        if hflip:
            xb = torch.flip(xb, dims=[3])
        out.append(model(xb)[:, 0])
    return torch.cat(out).numpy().astype(np.float64)


class EMA:
    """Exponential moving average of weights AND BN statistics (checkpoint averaging)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))  # warm start
        for e, m in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)


def mixup_loss(logit: torch.Tensor, y: torch.Tensor, smoothing: float, class_w: torch.Tensor,
               perm: torch.Tensor, lam: float) -> torch.Tensor:
    """Class-balanced BCE of a batch whose inputs were mixed as lam * x + (1 - lam) * x[perm].

    Each mixed image carries its two (smoothed) targets with weights lam and 1 - lam, each with
    its own class weight: lam * w_y * BCE(z, t_y) + (1 - lam) * w_y' * BCE(z, t_y'). As BCE is
    linear in the target this is a weighted BCE towards the class-weighted mix of the targets,
    and every film still brings w_y in total (lam as the first of a pair, 1 - lam as the second),
    so each class keeps contributing half of the loss. lam = 1 is the unmixed loss.
    """
    target = y * (1 - smoothing) + 0.5 * smoothing
    w_a, w_b = class_w[y.long()], class_w[y[perm].long()]
    weight = lam * w_a + (1 - lam) * w_b
    mixed_target = (lam * w_a * target + (1 - lam) * w_b * target[perm]) / weight
    return F.binary_cross_entropy_with_logits(logit, mixed_target, weight=weight)


def normal_series_weights(labels: np.ndarray, normal2: np.ndarray, weight: float) -> np.ndarray:
    """Per-film loss weights: a NORMAL2 normal film counts ``weight`` times an IM one. Rescaled within
    the normal class (mean 1), so the class balance stays what ``--class-weight`` makes it and only the
    emphasis between the two normal series moves; pneumonia films weigh 1. 21 of the 24 normal films at
    or above model 2.6's default threshold on the site sample are NORMAL2 films (70 % of its normals)."""
    w = np.where(normal2, weight, 1.0)
    normal = labels == 0
    w[normal] /= w[normal].mean()
    w[~normal] = 1.0
    return w.astype(np.float32)


def train(args: argparse.Namespace, run_dir: Path, train_imgs: np.ndarray, train_y: np.ndarray,
          train_viral: np.ndarray, train_film_w: np.ndarray, val_x: torch.Tensor, val_y: np.ndarray,
          spec: PreprocessSpec, site_x: torch.Tensor | None = None, site_y: np.ndarray | None = None) -> LungLensNet:
    run_dir.mkdir(parents=True, exist_ok=True)  # this network's last_ema.pt goes here
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    # Mixup draws from its own stream, so the order and augmentation of the films stay those of
    # the unmixed recipe (and --mixup 0 draws nothing at all).
    mix_rng = np.random.default_rng([args.seed, 1])
    model = LungLensNet(**ARCHS[args.size], padding=args.padding)
    ema = EMA(model, args.ema_decay)
    # The subtype unit lives beside the network, not in it: checkpoints and the export stay one logit.
    subtype_head = torch.nn.Linear(model.head.in_features, 1) if args.subtype > 0 else None
    params = list(model.parameters()) + (list(subtype_head.parameters()) if subtype_head is not None else [])
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    n = len(train_imgs)
    steps_per_epoch = n // args.batch_size if not args.smoke else min(3, max(1, n // args.batch_size))
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15,
                                                div_factor=20, final_div_factor=200)
    # Class balance: each class contributes half of the loss (or, with --class-weight none, its share of the films).
    n_pos = float(train_y.sum())
    class_w = torch.tensor([n / (2 * (n - n_pos)), n / (2 * n_pos)] if args.class_weight == "balanced" else [1.0, 1.0],
                           dtype=torch.float32)
    imgs_t = torch.from_numpy(train_imgs)
    y_t = torch.from_numpy(train_y.astype(np.float32))
    viral_t = torch.from_numpy(train_viral.astype(np.float32)) if subtype_head is not None else None
    film_w = torch.from_numpy(train_film_w)
    log.info("train images %d (pneumonia %d), steps/epoch %d, epochs %d, params %d",
             n, int(n_pos), steps_per_epoch, args.epochs, count_parameters(model))
    for epoch in range(args.epochs):
        t0 = time.time()
        model.train()
        order = torch.from_numpy(rng.permutation(n))
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * args.batch_size : (s + 1) * args.batch_size]
            x = augment_batch(imgs_t[idx], spec, gen, strength=args.aug, geometry=args.geometry, erase_p=args.erase)
            y = y_t[idx]
            if args.mixup > 0:
                lam = float(mix_rng.beta(args.mixup, args.mixup))
                perm = torch.from_numpy(mix_rng.permutation(len(idx)))
                x = lam * x + (1 - lam) * x[perm]
                loss = mixup_loss(model(x)[:, 0], y, args.label_smoothing, class_w, perm, lam)
            else:
                target = y * (1 - args.label_smoothing) + 0.5 * args.label_smoothing
                feats = model.features(x)
                bce = F.binary_cross_entropy_with_logits(model.classify(feats)[:, 0], target, reduction="none")
                focus = (1 - torch.exp(-bce)) ** args.focal if args.focal > 0 else 1.0
                loss = (class_w[y.long()] * film_w[idx] * focus * bce).mean()
                sick = y > 0.5  # the subtype is known for pneumonia films only
                if subtype_head is not None and bool(sick.any()):
                    loss = loss + args.subtype * F.binary_cross_entropy_with_logits(
                        subtype_head(model.pooled(feats[sick]))[:, 0], viral_t[idx][sick])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update(model)
            losses.append(loss.item())
        val_logit = predict_logits(ema.model, val_x)
        site_auc = M.auc(site_y, predict_logits(ema.model, site_x)) if site_x is not None else math.nan
        log.info("epoch %d/%d loss %.4f val_auc(ema) %.4f site_auc(ema) %.4f lr %.2e time %.0fs", epoch + 1,
                 args.epochs, float(np.mean(losses)), M.auc(val_y, val_logit), site_auc, sched.get_last_lr()[0],
                 time.time() - t0)
        torch.save({**member_state(ema.model), "epoch": epoch + 1}, run_dir / "last_ema.pt")
    return ema.model


def ci(stat, groups: np.ndarray, n_boot: int) -> dict:
    lo, hi = M.bootstrap_ci(stat, groups, n_boot=n_boot)
    return {"value": float(stat(np.arange(len(groups)))), "ci95": [lo, hi]}


def evaluate(model: LungLensNet | Ensemble, x: torch.Tensor, y: np.ndarray, groups: np.ndarray,
             n_boot: int) -> dict:
    """Discrimination and raw calibration on held-out films (no calibration is fitted here:
    that is the site profile's job, training.site_profile)."""
    raw = predict_logits(model, x)
    flip = predict_logits(model, x, hflip=True)
    p = M.sigmoid(raw)
    return {
        "auc": ci(lambda i: M.auc(y[i], raw[i]), groups, n_boot),
        "auc_hflip_tta": ci(lambda i: M.auc(y[i], (raw[i] + flip[i]) / 2), groups, n_boot),
        "ece_uncalibrated": ci(lambda i: M.ece(y[i], p[i]), groups, n_boot),
        "mirror_logit_correlation": float(np.corrcoef(raw, flip)[0, 1]),
    }


@torch.no_grad()
def attribution_scale(model: LungLensNet | Ensemble, x: torch.Tensor, y: np.ndarray) -> dict:
    """The logit contribution of one cell that the app draws at full colour.

    The median, over held-out pneumonia films, of each film's hottest cell: a typical
    pneumonia shows its strongest region at full colour, weaker evidence fainter, and every
    film is drawn on this one scale (never stretched to its own maximum).
    """
    wrapper = ExportWrapper(model, tuple(x.shape[2:])).eval()
    peaks = []
    for i in np.flatnonzero(y == 1):
        _, feats, grads = wrapper(x[i : i + 1])
        peaks.append(float((feats * grads).sum(dim=1).max()))
    return {
        "units": "logit contribution per cell",
        "grid": list(wrapper.model.features(x[:1]).shape[2:]),
        "full_scale": float(np.median(peaks)),
        "basis": f"median of the hottest cell over {len(peaks)} pneumonia films of the train-split validation patients",
    }


def network(config: dict) -> LungLensNet:
    """An untrained network of the shape a checkpoint records (``LungLensNet.config``)."""
    return LungLensNet(tuple(config["widths"]), tuple(config["blocks"]), tuple(config["strides"]),
                       padding=config.get("padding", "zeros"))


def load_checkpoint(path: Path) -> LungLensNet:
    """One network from a run's ``last_ema.pt``."""
    ckpt = torch.load(path, map_location="cpu")
    model = network(ckpt)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def load_bundled(path: Path = DEFAULT_CHECKPOINT) -> LungLensNet | Ensemble:
    """The weights of the bundled model (one network or an ensemble), as exported."""
    members = []
    for state in torch.load(path, map_location="cpu")["members"]:
        member = network(state)
        member.load_state_dict(state["state_dict"])
        members.append(member.eval())
    return members[0] if len(members) == 1 else Ensemble(members).eval()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + ("-smoke" if args.smoke else "")
    run_dir = args.runs / stamp
    setup_logging(run_dir)
    if args.smoke and args.checkpoint == DEFAULT_CHECKPOINT:
        args.checkpoint = args.out / f"{NAME}-smoke.pt"  # never overwrite the bundled model's weights
    t_start = time.time()
    spec = PreprocessSpec(height=args.size, width=args.size, normalization=args.normalization)
    items = list_items(args.data)
    if args.val_patients.exists():
        val_patients = read_validation_patients(args.val_patients)
    else:
        val_patients = split_patients(items)
        write_validation_patients(args.val_patients, val_patients)
        log.info("wrote %s", args.val_patients)
    tr = [it for it in items if it.patient not in val_patients]
    va = [it for it in items if it.patient in val_patients]
    if args.smoke:
        pick = np.random.default_rng(args.seed[0])
        tr = [tr[i] for i in sorted(pick.choice(len(tr), 3 * args.batch_size, replace=False))]
        va = [va[i] for i in sorted(pick.choice(len(va), 64, replace=False))]
        args.epochs, args.bootstrap = 1, min(args.bootstrap, 50)
    log.info("args %s", vars(args))
    log.info("train %d images / %d patients; validation %d images / %d patients",
             len(tr), len({i.patient for i in tr}), len(va), len({i.patient for i in va}))
    train_imgs, train_y = preload(tr, args.size), np.array([i.label for i in tr])
    train_viral = np.array([i.viral for i in tr])
    train_film_w = normal_series_weights(train_y, np.array([i.normal2 for i in tr]), args.normal2_weight)
    val_imgs, val_y = preload(va), np.array([i.label for i in va])
    val_x = validation_inputs(val_imgs, spec)
    site_dir = args.site if args.site is not None else args.data / "site-sample"
    site_items = list_site_items(site_dir) if site_dir.is_dir() else []
    site_x = validation_inputs(preload(site_items), spec) if site_items else None
    site_y = np.array([i.label for i in site_items])
    log.info("preloaded in %.0fs; site sample %s: %d films", time.time() - t_start, site_dir, len(site_items))

    finalized_from = None
    if args.finalize:
        members = [load_checkpoint(path) for path in args.finalize]
        model = members[0] if len(members) == 1 else Ensemble(members).eval()
        finalized_from = [str(path) for path in args.finalize]
        log.info("finalizing %s", ", ".join(finalized_from))
    else:
        members = [train(argparse.Namespace(**{**vars(args), "seed": seed}), run_dir / f"seed-{seed}",
                         train_imgs, train_y, train_viral, train_film_w, val_x, val_y, spec, site_x, site_y)
                   for seed in args.seed]
        model = members[0] if len(members) == 1 else Ensemble(members).eval()
    groups = np.array([i.patient for i in va])
    figures = evaluate(model, val_x, val_y, groups, args.bootstrap)
    site_figures = evaluate(model, site_x, site_y, np.array([i.patient for i in site_items]), args.bootstrap) \
        if site_x is not None else None
    train_minutes = (time.time() - t_start) / 60

    onnx_path = args.out / f"{NAME}.onnx"
    export_onnx(model, onnx_path, (spec.height, spec.width))
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"members": [member_state(m) for m in members]}, args.checkpoint)
    feature_channels = sum(m.head.in_features for m in members)
    manifest = {
        "name": NAME,
        "version": VERSION,
        "sha256": sha256_of(onnx_path),
        "onnx_file": onnx_path.name,
        "input_name": "image",
        "input_shape": ["N", 1, spec.height, spec.width],
        "outputs": OUTPUTS,
        "preprocess": spec.to_dict(),
        "labels": ["NORMAL", "PNEUMONIA"],
        "default_profile": f"{NAME}{PROFILE_SUFFIX}",
        "attribution": attribution_scale(model, val_x, val_y),
        "validation_train_split": {
            "what": "patients held out of the training split (same collection as the training films): "
                    "optimistic, see the site profile for figures on other patients",
            "n_patients": len(set(groups)),
            "n_images": len(va),
            "n_pneumonia_images": int(val_y.sum()),
            "n_normal_images": int(len(val_y) - val_y.sum()),
            "split": "by patient, stratified by class, seeded; list in training/validation_patients.txt",
            "bootstrap": f"95% percentile intervals, {args.bootstrap} resamples of patients",
            "figures": figures,
        },
        "site_sample_uncalibrated": site_figures,
        "training_data": TRAINING_DATA,
        "architecture": {
            "family": "LungLensNet: 4x4 stride-2 conv/BN/ReLU stem, stages of a 4x4 stride-2 or 3x3 stride-1 "
                      "conv with optional residual blocks down to a 14x14 map; GAP, dropout, linear. Every "
                      "convolution pads symmetrically.",
            "members": len(members),
            "member_shapes": [{k: v if isinstance(v, str) else list(v) for k, v in m.config.items()} for m in members],
            "feature_map": [feature_channels, *model.features(torch.zeros(1, 1, spec.height, spec.width)).shape[2:]],
            "opset": 17,
        },
        "parameters": count_parameters(model),
        "training": {
            "command": "python -m training.train --data ../shared/data/kermany-cxr-224 --out resources/models",
            "argv": sys.argv[1:] if argv is None else argv,
            "threads": args.threads,
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
            "label_smoothing": args.label_smoothing, "ema_decay": args.ema_decay, "seed": args.seed,
            "augmentation": args.aug, "geometry": args.geometry, "mixup_alpha": args.mixup, "subtype_weight": args.subtype, "erase_p": args.erase, "minutes": None if args.finalize else round(train_minutes, 1), "smoke": args.smoke, "run": stamp,
            "finalized_from": finalized_from,
        },
    }
    write_manifest(args.out / f"{NAME}.json", manifest)
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    log.info("train-split validation %s", json.dumps(figures))
    log.info("site sample (uncalibrated) %s", json.dumps(site_figures))
    log.info("exported %s (%.2f MB) in %.1f min total", onnx_path, onnx_path.stat().st_size / 1e6,
             (time.time() - t_start) / 60)
    if site_x is not None:
        site_profile.main(["--site", str(site_dir), "--models", str(args.out), "--bootstrap", str(args.bootstrap)])
        write_model_card([str(args.out / f"{NAME}.json")])
    return 0


def member_state(model: LungLensNet) -> dict:
    return {**model.config, "state_dict": model.state_dict()}

if __name__ == "__main__":
    raise SystemExit(main())
