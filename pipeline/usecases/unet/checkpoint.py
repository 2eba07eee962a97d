"""Checkpoints of the U-Net: the original's dict, saved atomically, loaded as data.

train_unet_albumentations.py saved ``{epoch (1-based), model_dict, optim_dict, best_loss_on_test,
n_classes, in_channels, padding, depth, wf, up_mode, batch_norm}`` to
``epistroma_unet_best_model.pth`` whenever the validation loss improved. Here the same keys go to
``epistroma_unet_best_model.pth`` (best validation loss) and ``epistroma_unet_last_model.pth`` (every
epoch, for resuming), each written under a temporary name and renamed. ``best_loss_on_test`` (the
epoch's {"train", "val"} losses) holds Python floats, not numpy scalars (Q5), so
``torch.load(weights_only=True)`` reads it: a checkpoint is data, never code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import atomic
from pipeline.usecases.unet.model import ARCH_KEYS

KEYS = ("epoch", "model_dict", "optim_dict", "best_loss_on_test") + ARCH_KEYS
BEST = "epistroma_unet_best_model.pth"
LAST = "epistroma_unet_last_model.pth"


class BadCheckpoint(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


def make_state(epoch: int, model: Any, optim: Any, losses: dict[str, float], arch: dict) -> dict:
    """The original's dict (plain Python numbers and tensors only)."""
    return {
        "epoch": int(epoch),
        "model_dict": model.state_dict(),
        "optim_dict": optim.state_dict(),
        "best_loss_on_test": {k: float(v) for k, v in losses.items()},
        **{k: arch[k] for k in ARCH_KEYS},
    }


def save(path: Path, state: dict) -> None:
    """torch.save under a temporary name, then rename."""
    import torch

    with atomic.atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load(path: Path, arch: dict | None = None) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check its keys (and, when ``arch`` is given,
    that it is of that architecture). Raises BadCheckpoint naming the file and the problem."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise BadCheckpoint(f"{path}: checkpoint does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BadCheckpoint(
            f"{path}: refused by torch.load(weights_only=True): it holds objects other than "
            f"tensors and plain Python values ({str(exc).splitlines()[0]})"
        ) from None
    except Exception as exc:  # zip/pickle errors of a file that is no checkpoint
        raise BadCheckpoint(f"{path}: not a PyTorch checkpoint ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    if not isinstance(state, dict):
        raise BadCheckpoint(f"{path}: holds a {type(state).__name__}, not the original's checkpoint dict")
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise BadCheckpoint(f"{path}: no key(s) {', '.join(missing)}; the U-Net checkpoint has {', '.join(KEYS)}")
    if arch is not None:
        diff = [f"{k} {state[k]!r} (expected {arch[k]!r})" for k in ARCH_KEYS if state[k] != arch[k]]
        if diff:
            raise BadCheckpoint(f"{path}: a checkpoint of another architecture: " + ", ".join(diff))
    return state


def model_from(path: Path, device: str = "cpu") -> tuple[Any, dict]:
    """(UNet in eval mode on ``device``, checkpoint) rebuilt from the stored hyper-parameters, as
    make_output_unet_cmd.py and visualize_validation_results.ipynb did."""
    from pipeline.usecases.unet.model import build

    state = load(path)
    try:
        model = build(state)
        model.load_state_dict(state["model_dict"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise BadCheckpoint(
            f"{path}: its weights do not fit the architecture it names ({str(exc).splitlines()[0]})"
        ) from None
    return model.to(device).eval(), state
