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
from .model import LungLensNet, count_parameters
from .model_card import main as write_model_card

NAME = "lunglens-cxr"
VERSION = "1.0.0"
TRAINING_DIR = Path(__file__).resolve().parent
DEFAULT_VAL_LIST = TRAINING_DIR / "validation_patients.txt"
DEFAULT_CHECKPOINT = TRAINING_DIR / "checkpoints" / f"{NAME}.pt"
WIDTHS = (16, 32, 64, 128, 192)
BLOCKS = (False, True, True, True)
STRIDES = (2, 2, 2, 1)

log = logging.getLogger("training")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="folder holding train/{NORMAL,PNEUMONIA}")
    p.add_argument("--out", type=Path, required=True, help="where the .onnx and .json go")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--ema-decay", type=float, default=0.995)
    p.add_argument("--seed", type=int, default=1122)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 1 is as fast as 2 on a shared 2-core machine and keeps runs comparable")
    p.add_argument("--val-patients", type=Path, default=DEFAULT_VAL_LIST,
                   help="validation patient list; created (seeded) if missing")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--runs", type=Path, default=TRAINING_DIR / "runs", help="per-run log folder")
    p.add_argument("--site", type=Path, default=None,
                   help="a clinic's labelled films (NORMAL/, PNEUMONIA/), default <data>/site-sample: "
                        "logged each epoch and used for the shipped calibration, never trained on")
    p.add_argument("--aug", choices=("full", "light"), default="full",
                   help="full: photometric + geometric augmentation; light: geometric and mild photometric")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--smoke", action="store_true", help="a few batches of real images, end to end")
    p.add_argument("--finalize", type=Path, default=None, metavar="LAST_EMA_PT",
                   help="skip training: calibrate, export and describe the EMA weights saved by an "
                        "interrupted run (training/runs/<stamp>/last_ema.pt)")
    return p.parse_args(argv)


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


def train(args: argparse.Namespace, run_dir: Path, train_imgs: np.ndarray, train_y: np.ndarray, val_x: torch.Tensor,
          val_y: np.ndarray, spec: PreprocessSpec, site_x: torch.Tensor | None = None,
          site_y: np.ndarray | None = None) -> LungLensNet:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = LungLensNet(WIDTHS, BLOCKS, STRIDES)
    ema = EMA(model, args.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    n = len(train_imgs)
    steps_per_epoch = n // args.batch_size if not args.smoke else min(3, max(1, n // args.batch_size))
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15,
                                                div_factor=20, final_div_factor=200)
    # Class balance: each class contributes half of the loss.
    n_pos = float(train_y.sum())
    class_w = torch.tensor([n / (2 * (n - n_pos)), n / (2 * n_pos)], dtype=torch.float32)
    imgs_t = torch.from_numpy(train_imgs)
    y_t = torch.from_numpy(train_y.astype(np.float32))
    log.info("train images %d (pneumonia %d), steps/epoch %d, epochs %d, params %d",
             n, int(n_pos), steps_per_epoch, args.epochs, count_parameters(model))
    for epoch in range(args.epochs):
        t0 = time.time()
        model.train()
        order = torch.from_numpy(rng.permutation(n))
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * args.batch_size : (s + 1) * args.batch_size]
            x = augment_batch(imgs_t[idx], spec, gen, strength=args.aug)
            y = y_t[idx]
            target = y * (1 - args.label_smoothing) + 0.5 * args.label_smoothing
            loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], target, weight=class_w[y.long()])
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
        torch.save({"widths": WIDTHS, "blocks": BLOCKS, "strides": STRIDES, "epoch": epoch + 1,
                    "state_dict": ema.model.state_dict()}, run_dir / "last_ema.pt")
    return ema.model


def describe_operating_points(ops: dict) -> None:
    """Add the plain-language descriptions the app shows (they depend on how the points are ordered)."""
    ops["high_sensitivity"]["description"] = (
        "Screening default: the most specific threshold whose sensitivity on validation patients is "
        ">= 0.95 with 95% confidence (Wilson lower bound), so few pneumonias are missed."
    )
    below = ops["balanced"]["threshold"] < ops["high_sensitivity"]["threshold"]
    ops["balanced"]["description"] = "Youden point on validation patients (maximizes sensitivity + specificity). " + (
        "Here it lies below the default threshold: at least as sensitive, at most as specific."
        if below else "Fewer false alarms than the default, more missed pneumonias."
    )


def ci(stat, groups: np.ndarray, n_boot: int) -> dict:
    lo, hi = M.bootstrap_ci(stat, groups, n_boot=n_boot)
    return {"value": float(stat(np.arange(len(groups)))), "ci95": [lo, hi]}


def evaluate(model: LungLensNet, val_x: torch.Tensor, val_y: np.ndarray, groups: np.ndarray,
             n_boot: int) -> tuple[dict, float]:
    """Calibrate (folding the bias shift into the head), choose operating points, compute figures."""
    raw = predict_logits(model, val_x)
    raw_flip = predict_logits(model, val_x, hflip=True)
    a, b = M.fit_platt(val_y, raw)
    with torch.no_grad():
        model.head.bias += b / a
    temperature = 1.0 / a
    logit = predict_logits(model, val_x)
    prob_before = M.sigmoid(raw)
    prob = M.sigmoid(logit / temperature)
    t_only = M.fit_temperature(val_y, raw)
    hs = M.high_sensitivity_threshold(val_y, prob, 0.95)
    bal = M.youden_threshold(val_y, prob)
    y = val_y
    ops = {}
    for key, thr in (("high_sensitivity", hs), ("balanced", bal)):
        se, sp = M.sens_spec(y, prob, thr)
        ops[key] = {"threshold": float(thr), "sensitivity": se, "specificity": sp}
    describe_operating_points(ops)

    def at(thr):
        return {
            "accuracy": lambda i: float(((prob[i] >= thr) == y[i].astype(bool)).mean()),
            "sensitivity": lambda i: M.sens_spec(y[i], prob[i], thr)[0] if y[i].any() else math.nan,
            "specificity": lambda i: M.sens_spec(y[i], prob[i], thr)[1] if (~y[i].astype(bool)).any() else math.nan,
        }

    figures = {
        "auc": ci(lambda i: M.auc(y[i], prob[i]), groups, n_boot),
        "auc_hflip_tta": ci(lambda i: M.auc(y[i], (raw[i] + raw_flip[i]) / 2), groups, n_boot),
        "ece_before": ci(lambda i: M.ece(y[i], prob_before[i]), groups, n_boot),
        "ece_after": ci(lambda i: M.ece(y[i], prob[i]), groups, n_boot),
    }
    for key in ops:
        figures[key] = {name: ci(f, groups, n_boot) for name, f in at(ops[key]["threshold"]).items()}
    # TTA at the same operating points (its own thresholds chosen the same way), for the report.
    p_tta = M.sigmoid(((raw + raw_flip) / 2 + b / a) / temperature)
    hs_tta = M.high_sensitivity_threshold(y, p_tta, 0.95)
    figures["hflip_tta"] = {
        "auc": M.auc(y, p_tta),
        "high_sensitivity": dict(zip(("sensitivity", "specificity"), M.sens_spec(y, p_tta, hs_tta))),
        "balanced": dict(zip(("sensitivity", "specificity"), M.sens_spec(y, p_tta, M.youden_threshold(y, p_tta)))),
        "used_in_app": False,
    }
    calibration = {
        "method": "Platt fit on validation logits: the shift b/a is folded into the head's bias (the class-"
                  "weighted loss biases logits), then temperature T = 1/a; calibrated p = sigmoid(logit / T)",
        "bias_shift_folded": b / a,
        "temperature_only_fit": t_only,
        "ece_temperature_only": M.ece(y, M.sigmoid(raw / t_only)),
        "ece_before": M.ece(y, prob_before),
        "ece_after": M.ece(y, prob),
        "bins": 10,
        "reliability": M.reliability(y, prob),
    }
    return {"operating_points": ops, "metrics": figures, "calibration": calibration}, temperature


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + ("-smoke" if args.smoke else "")
    run_dir = args.runs / stamp
    setup_logging(run_dir)
    if args.smoke and args.checkpoint == DEFAULT_CHECKPOINT:
        args.checkpoint = args.out / f"{NAME}-smoke.pt"  # never overwrite the bundled model's weights
    t_start = time.time()
    spec = PreprocessSpec()
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
        pick = np.random.default_rng(args.seed)
        tr = [tr[i] for i in sorted(pick.choice(len(tr), 3 * args.batch_size, replace=False))]
        va = [va[i] for i in sorted(pick.choice(len(va), 64, replace=False))]
        args.epochs, args.bootstrap = 1, min(args.bootstrap, 50)
    log.info("args %s", vars(args))
    log.info("train %d images / %d patients; validation %d images / %d patients",
             len(tr), len({i.patient for i in tr}), len(va), len({i.patient for i in va}))
    train_imgs, train_y = preload(tr), np.array([i.label for i in tr])
    val_imgs, val_y = preload(va), np.array([i.label for i in va])
    val_x = validation_inputs(val_imgs, spec)
    site_dir = args.site if args.site is not None else args.data / "site-sample"
    site_items = list_site_items(site_dir) if site_dir.is_dir() else []
    site_x = validation_inputs(preload(site_items), spec) if site_items else None
    site_y = np.array([i.label for i in site_items])
    log.info("preloaded in %.0fs; site sample %s: %d films", time.time() - t_start, site_dir, len(site_items))

    finalized_from = None
    if args.finalize is not None:
        ckpt = torch.load(args.finalize, map_location="cpu")
        model = LungLensNet(tuple(ckpt["widths"]), tuple(ckpt["blocks"]))
        model.load_state_dict(ckpt["state_dict"])
        finalized_from = {"checkpoint": str(args.finalize), "epochs_completed": ckpt["epoch"]}
        log.info("finalizing %s (epoch %d of the run)", args.finalize, ckpt["epoch"])
    else:
        model = train(args, run_dir, train_imgs, train_y, val_x, val_y, spec, site_x, site_y)
    groups = np.array([i.patient for i in va])
    report, temperature = evaluate(model, val_x, val_y, groups, args.bootstrap)
    train_minutes = (time.time() - t_start) / 60

    onnx_path = args.out / f"{NAME}.onnx"
    export_onnx(model, onnx_path)
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"widths": WIDTHS, "blocks": BLOCKS, "state_dict": model.state_dict(), "temperature": temperature}, args.checkpoint)
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
        "temperature": temperature,
        "default_operating_point": "high_sensitivity",
        "operating_points": report["operating_points"],
        "metrics": report["metrics"],
        "calibration": report["calibration"],
        "validation": {
            "n_patients": len(set(groups)),
            "n_images": len(va),
            "n_pneumonia_images": int(val_y.sum()),
            "n_normal_images": int(len(val_y) - val_y.sum()),
            "split": "by patient, stratified by class, seeded; list in training/validation_patients.txt",
            "bootstrap": f"95% percentile intervals, {args.bootstrap} resamples of patients",
        },
        "training_data": TRAINING_DATA,
        "architecture": {
            "family": "LungLensNet: 3x3 conv/BN/ReLU stem + 4 stages (stride-2 3x3 conv, + a residual block in the last three), GAP, dropout, linear",
            "widths": list(WIDTHS),
            "residual_block_per_stage": list(BLOCKS),
            "feature_map": [WIDTHS[-1], spec.height // 32, spec.width // 32],
            "opset": 17,
        },
        "parameters": count_parameters(model),
        "training": {
            "command": "python -m training.train --data ../shared/data/kermany-cxr-224 --out resources/models",
            "argv": sys.argv[1:] if argv is None else argv,
            "threads": args.threads,
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
            "label_smoothing": args.label_smoothing, "ema_decay": args.ema_decay, "seed": args.seed,
            "minutes": round(train_minutes, 1), "smoke": args.smoke, "run": stamp,
            "finalized_from": finalized_from,
        },
    }
    write_manifest(args.out / f"{NAME}.json", manifest)
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    write_model_card([str(args.out / f"{NAME}.json")])
    m = report["metrics"]
    log.info("val AUC %.4f %s | ECE %.4f -> %.4f | T %.3f | ops %s", m["auc"]["value"], m["auc"]["ci95"],
             report["calibration"]["ece_before"], report["calibration"]["ece_after"], temperature,
             json.dumps({k: {kk: round(v, 4) for kk, v in op.items() if kk != "description"}
                         for k, op in report["operating_points"].items()}))
    log.info("hflip TTA %s", json.dumps(m["hflip_tta"]))
    log.info("exported %s (%.2f MB) in %.1f min total", onnx_path, onnx_path.stat().st_size / 1e6,
             (time.time() - t_start) / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
