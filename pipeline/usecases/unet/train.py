"""Training of the U-Net (train_unet_albumentations.py, v3 17/8/2019).

Per epoch, as the original: the train phase (``model.train()``, Adam step per batch of 3 random
256 crops) then the val phase (``model.eval()``, no gradients; pixel confusion matrix, rows =
truth); epoch loss = mean of the batch losses; TensorBoard scalars ``train/loss``, ``val/loss``,
``val/acc``, ``val/TN``, ``val/TP``, ``val/FP`` (cm[0,1]), ``val/FN`` (cm[1,0]), ``val/TNR``,
``val/TPR`` at step = epoch (0-based); the checkpoint dict saved when the validation loss improves.
Adam at its defaults (lr 1e-3, betas .9/.999, no weight decay), no scheduler.

Beyond the original: a last checkpoint every epoch and resume from it (the train stage's recipe
says when: :func:`pipeline.usecases.unet.runner.graph`); seeds (the original
seeded nothing); ``WORK/history.csv`` and ``WORK/unet_training.png`` (loss and accuracy per epoch
for people without TensorBoard). Each epoch reseeds torch, the shuffling and the augmentations from
(seed, epoch), so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import atomic
from pipeline.usecases.unet import augment, checkpoint
from pipeline.usecases.unet.database import check_pytable
from pipeline.usecases.unet.loss import class_weights, confusion, edge_ring, weighted_loss
from pipeline.usecases.unet.model import DEFAULT_ARCH, build, n_parameters

log = logging.getLogger(__name__)

SCALARS = ("acc", "TN", "TP", "FP", "FN", "TNR", "TPR")
HISTORY_FIELDS = ("epoch", "train_loss", "val_loss") + tuple(f"val_{s}" for s in SCALARS) + ("seconds", "best")
#: The training's other files in WORK: per-epoch history, its plot, TensorBoard's folder.
HISTORY = "history.csv"
PLOT = "unet_training.png"
RUNS = "runs"


@dataclass(frozen=True)
class TrainParams:
    """The trainer's parameters; defaults are the original's."""

    epochs: int = 100
    batch_size: int = 3
    patch_size: int = 256
    edge_weight: float = 1.1
    val_augment: bool = True  # Q3: the original augments validation tiles too
    wf: int = 2
    depth: int = 5
    seed: int = 1

    def options(self) -> dict:
        """The parameters that make the trained model, as the train stage's recipe names them (the
        command line's options): all but ``epochs``, which says how far training goes (a run asked
        for more epochs goes on from the last checkpoint; see :func:`pipeline.usecases.unet.runner.graph`)."""
        return {
            "batch_size": self.batch_size,
            "patch_size": self.patch_size,
            "edge_weight": self.edge_weight,
            "clean_val": not self.val_augment,
            "wf": self.wf,
            "depth": self.depth,
            "seed": self.seed,
        }

    def arch(self) -> dict:
        return {**DEFAULT_ARCH, "wf": self.wf, "depth": self.depth}

    def check(self) -> None:
        if self.patch_size % 2 ** (self.depth - 1):
            raise ValueError(
                f"--patch-size {self.patch_size} must be a multiple of 2**(depth-1) = "
                f"{2 ** (self.depth - 1)} for the padded U-Net's output to match its input"
            )
        if self.edge_weight <= 0:
            raise ValueError(f"--edge-weight {self.edge_weight} must be positive (1 = no edge boost)")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("--epochs and --batch-size must be at least 1")


def device_for(gpu: bool) -> str:
    """ "cuda" when asked and present; RuntimeError saying why when asked and absent; else "cpu"."""
    import torch

    if not gpu:
        return "cpu"
    if not torch.cuda.is_available():
        build = "built without CUDA" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise RuntimeError(
            f"--gpu: CUDA is not available (torch {torch.__version__} is {build}, or no GPU is "
            f"visible); run without --gpu to train and infer on the CPU"
        )
    return "cuda"


class TileDataset:
    """A pytable's tiles: (image 3 x P x P float32, mask P x P uint8, edge ring P x P uint8) per item.

    The edge ring is computed on the whole tile before augmentation, as the original did. The
    file is opened once and kept open (the original reopened it per item).
    """

    def __init__(self, path: Path, transforms: Any):
        self.path = Path(path)
        self.transforms = transforms
        self._h5 = None
        import tables

        with tables.open_file(str(self.path), mode="r") as h5:
            self.numpixels = h5.root.numpixels[:]
            self.n = int(h5.root.img.shape[0])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import tables

        if self._h5 is None:
            self._h5 = tables.open_file(str(self.path), mode="r")
        img = self._h5.root.img[i]
        mask = self._h5.root.mask[i]
        out = self.transforms(image=img, masks=[mask, edge_ring(mask)])
        return out["image"], out["masks"][0], out["masks"][1]

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**31


def _read_history(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if int(r["epoch"]) <= upto]


def _write_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS)
    w.writeheader()
    w.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def plot_history(rows: list[dict], path: Path) -> None:
    """Loss (train, val) and validation pixel accuracy per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [int(r["epoch"]) for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [float(r["train_loss"]) for r in rows], label="train/loss")
    a1.plot(ep, [float(r["val_loss"]) for r in rows], label="val/loss")
    a1.set_xlabel("epoch")
    a1.set_ylabel("weighted cross-entropy")
    a1.legend()
    a2.plot(ep, [float(r["val_acc"]) for r in rows], label="val/acc", color="C2")
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation pixel accuracy")
    a2.legend()
    fig.tight_layout()
    with atomic.atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def _run_phase(
    model, loader, phase: str, optim, weights, edge_weight: float, device: str, bar
) -> tuple[float, np.ndarray]:
    """One pass over a loader: (mean of the batch losses, confusion matrix of the val phase)."""
    import torch

    losses = []
    cm = np.zeros((2, 2))
    model.train(phase == "train")
    for x, y, ring in loader:
        x = x.to(device)
        y = y.long().to(device)
        ring = ring.float().to(device)
        with torch.set_grad_enabled(phase == "train"):
            pred = model(x)
            loss = weighted_loss(pred, y, ring, weights, edge_weight)
            if phase == "train":
                optim.zero_grad()
                loss.backward()
                optim.step()
        losses.append(float(loss.detach().cpu()))
        if phase == "val":
            cm += confusion(y.cpu().numpy(), pred.detach().argmax(1).cpu().numpy())
        bar.update(1)
    return float(np.mean(np.asarray(losses, dtype=np.float32))), cm


def _val_scalars(cm: np.ndarray) -> dict[str, float]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "acc": float((cm / cm.sum()).trace()),
            "TN": cm[0, 0],
            "TP": cm[1, 1],
            "FP": cm[0, 1],
            "FN": cm[1, 0],
            "TNR": float(cm[0, 0] / (cm[0, 0] + cm[0, 1])),
            "TPR": float(cm[1, 1] / (cm[1, 1] + cm[1, 0])),
        }


def train(work: Path, dbs: dict[str, Path], p: TrainParams, gpu: bool = False, show_progress: bool = True) -> dict:
    """Train into ``work``, going on from ``work/epistroma_unet_last_model.pth`` when it is there;
    returns :func:`trained_summary`'s dict.

    Whether the files in ``work`` were made with these parameters and databases is the train
    stage's recipe (:func:`pipeline.usecases.unet.runner.graph`): it removes them before a training
    from scratch, and runs this only to make or go on with the training it records.
    """
    import torch
    from torch.utils.data import DataLoader
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    p.check()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    for ph in ("train", "val"):
        check_pytable(dbs[ph], p.patch_size)
    last_path, best_path = work / checkpoint.LAST, work / checkpoint.BEST
    device = device_for(gpu)
    torch.manual_seed(p.seed)
    arch = p.arch()
    model = build(arch).to(device)
    optim = torch.optim.Adam(model.parameters())
    start, best = 0, math.inf
    if last_path.is_file():
        state = checkpoint.load(last_path, arch)
        model.load_state_dict(state["model_dict"])
        optim.load_state_dict(state["optim_dict"])
        start = int(state["epoch"])
        if best_path.is_file():
            best = float(checkpoint.load(best_path, arch)["best_loss_on_test"]["val"])
        log.info("resuming after epoch %d (best validation loss so far %.4f)", start, best)
    history = _read_history(work / HISTORY, start)
    if start >= p.epochs:
        log.info("already trained for %d epochs (asked %d)", start, p.epochs)
        return trained_summary(work, dbs, p, gpu)

    train_tf = augment.train_transforms(p.patch_size)
    val_tf = augment.train_transforms(p.patch_size) if p.val_augment else augment.clean_transforms(p.patch_size)
    data = {"train": TileDataset(dbs["train"], train_tf), "val": TileDataset(dbs["val"], val_tf)}
    weights = torch.from_numpy(class_weights(data["train"].numpixels)).to(device)
    log.info(
        "U-Net %s: %d parameters; class weights %s; %d train and %d val tiles; %s",
        arch,
        n_parameters(model),
        weights.cpu().numpy().round(4).tolist(),
        len(data["train"]),
        len(data["val"]),
        device,
    )
    writer = SummaryWriter(log_dir=str(work / RUNS), purge_step=start if start else None)
    try:
        for epoch in range(start, p.epochs):
            t0 = time.perf_counter()
            s = _epoch_seed(p.seed, epoch)
            torch.manual_seed(s)
            augment.reseed(train_tf, s)
            if p.val_augment:
                augment.reseed(val_tf, s + 1)
            losses, cm = {}, None
            nb = sum(math.ceil(len(d) / p.batch_size) for d in data.values())
            with tqdm(
                total=nb, desc=f"epoch {epoch + 1}/{p.epochs}", unit="batch", disable=not show_progress, leave=False
            ) as bar:
                for phase in ("train", "val"):
                    gen = torch.Generator().manual_seed(s + (phase == "val"))
                    loader = DataLoader(
                        data[phase],
                        batch_size=p.batch_size,
                        shuffle=True,
                        num_workers=0,
                        pin_memory=device == "cuda",
                        generator=gen,
                    )
                    losses[phase], cm_ = _run_phase(model, loader, phase, optim, weights, p.edge_weight, device, bar)
                    if phase == "val":
                        cm = cm_
            val = _val_scalars(cm)
            for phase in ("train", "val"):
                writer.add_scalar(f"{phase}/loss", losses[phase], epoch)
            for k in SCALARS:
                writer.add_scalar(f"val/{k}", val[k], epoch)
            writer.flush()
            improved = losses["val"] < best
            state = checkpoint.make_state(epoch + 1, model, optim, losses, arch)
            if improved:
                best = losses["val"]
                checkpoint.save(best_path, state)
            checkpoint.save(last_path, state)
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": f"{losses['train']:.6f}",
                    "val_loss": f"{losses['val']:.6f}",
                    **{f"val_{k}": f"{val[k]:.6g}" for k in SCALARS},
                    "seconds": f"{time.perf_counter() - t0:.2f}",
                    "best": int(improved),
                }
            )
            _write_history(work / HISTORY, history)
            plot_history(history, work / PLOT)
            log.info(
                "[%d/%d] train loss %.4f, val loss %.4f, val acc %.4f%s",
                epoch + 1,
                p.epochs,
                losses["train"],
                losses["val"],
                val["acc"],
                "  **" if improved else "",
            )
    finally:
        writer.close()
        for d in data.values():
            d.close()
    return trained_summary(work, dbs, p, gpu)


def trained_summary(work: Path, dbs: dict[str, Path], p: TrainParams, gpu: bool = False) -> dict:
    """What the training in ``work`` is, from its files: {"parameters", "device", "tiles" (per
    phase), "best", "last" (paths), "epochs", "best_epoch", "best_val_loss", "best_val_acc",
    "train_seconds"} (the epochs of ``history.csv`` up to the last checkpoint's)."""
    work = Path(work)
    info = {ph: check_pytable(dbs[ph], p.patch_size) for ph in ("train", "val")}
    last_path = work / checkpoint.LAST
    upto = int(checkpoint.load(last_path)["epoch"]) if last_path.is_file() else 0
    return {
        "parameters": n_parameters(build(p.arch())),
        "device": device_for(gpu),
        "tiles": {k: v["tiles"] for k, v in info.items()},
        "best": str(work / checkpoint.BEST),
        "last": str(last_path),
        **_summary_of(_read_history(work / HISTORY, upto)),
    }


def _summary_of(history: list[dict]) -> dict:
    if not history:
        return {"epochs": 0}
    best = [r for r in history if str(r["best"]) == "1"]
    b = min(best or history, key=lambda r: float(r["val_loss"]))
    return {
        "epochs": int(history[-1]["epoch"]),
        "best_epoch": int(b["epoch"]),
        "best_val_loss": float(b["val_loss"]),
        "best_val_acc": float(b["val_acc"]),
        "train_seconds": round(sum(float(r["seconds"]) for r in history), 1),
    }
