"""Augmentations of train_unet_albumentations.py (v3), mapped from albumentations 0.4 to 2.x (Q7).

The original (albumentations 0.4.3/0.4.5) applied to training *and* validation tiles:

==================================================================  =============================================================
original (0.4)                                                      here (2.0.8), same draws
==================================================================  =============================================================
``VerticalFlip(p=.5)``                                              ``VerticalFlip(p=.5)``
``HorizontalFlip(p=.5)``                                            ``HorizontalFlip(p=.5)``
``HueSaturationValue(hue_shift_limit=(-25,0), sat_shift_limit=0,    the same arguments (hue shift uniform in [-25, 0] on OpenCV's
val_shift_limit=0, p=1)``                                           0..179 hue of uint8 RGB; saturation and value unchanged)
``Rotate(p=1, border_mode=cv2.BORDER_CONSTANT, value=0)``           ``Rotate(p=1, border_mode=cv2.BORDER_CONSTANT, fill=0,
(limit 90: angle uniform in [-90, 90]; image bilinear, masks        fill_mask=0)`` (``value`` became ``fill``; the masks' fill,
nearest, masks filled with 0)                                       ``mask_value=None`` then, is ``fill_mask=0``; limit, interpolations
                                                                    unchanged)
``RandomSizedCrop((256,256), 256, 256)``                            ``RandomSizedCrop(min_max_height=(256,256), size=(256,256))``
(positional: a 256x256 crop at a random place, resized to itself)   (``height, width`` became ``size=``)
``albumentations.pytorch.ToTensor()`` (image float32 CHW / 255;     ``ToFloat(max_value=255)`` then ``ToTensorV2()`` (image float32
the ``masks`` list left as uint8 arrays, collated to uint8)         CHW / 255; masks become uint8 tensors, as collated before)
==================================================================  =============================================================

The order (flips, hue, rotation, crop) is the original's. The original seeded nothing (Q1); here
the pipeline is reseeded per epoch from ``--seed`` (:func:`reseed`). Validation with the same
random augmentations is the original's (Q3); ``clean`` validation uses only a deterministic centre
crop of the crop size (what visualize_validation_results.ipynb kept, a random crop there).
"""

from __future__ import annotations

from typing import Any


def train_transforms(patch: int = 256, seed: int | None = None, record: bool = False) -> Any:
    """The original's augmentation pipeline (see the table above): dict(image=HxWx3 uint8,
    masks=[HxW uint8, ...]) -> image 3 x patch x patch float32 tensor, masks patch x patch uint8 tensors.

    ``record``: each result also holds ``applied_transforms``, the transforms applied and their draws
    (flips, hue shift, rotation matrix, crop), so that a test can recompute what they did."""
    import albumentations as A
    import cv2
    from albumentations.pytorch import ToTensorV2

    pipeline = A.Compose(
        [
            A.VerticalFlip(p=0.5),
            A.HorizontalFlip(p=0.5),
            A.HueSaturationValue(hue_shift_limit=(-25, 0), sat_shift_limit=0, val_shift_limit=0, p=1),
            A.Rotate(p=1, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0),
            A.RandomSizedCrop(min_max_height=(patch, patch), size=(patch, patch)),
            A.ToFloat(max_value=255),
            ToTensorV2(),
        ],
        save_applied_params=record,
    )
    if seed is not None:
        reseed(pipeline, seed)
    return pipeline


def clean_transforms(patch: int = 256) -> Any:
    """Validation without augmentation (Q3's clean variant): centre crop, /255, tensors."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    return A.Compose([A.CenterCrop(patch, patch), A.ToFloat(max_value=255), ToTensorV2()])


def reseed(transforms: Any, seed: int) -> None:
    """Reset the random draws of a pipeline made by :func:`train_transforms`: one numpy and one Python
    generator seeded with ``seed``, shared by all its transforms, so that each draw is the next of one
    stream, as the original's unseeded global generators were.

    Not ``Compose.set_random_seed``: albumentations 2 gives every transform its own generator seeded
    alike, so the draws repeat across transforms (VerticalFlip and HorizontalFlip flipped together:
    2 of the 4 flip combinations; a unit test checks all 4 occur)."""
    import random

    import numpy as np

    transforms.set_random_state(np.random.default_rng(seed), random.Random(seed))
