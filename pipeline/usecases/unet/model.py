"""The U-Net of the tutorial (segmentation_epistroma_unet/unet.py, adapted from jvanvugt/pytorch-unet).

Down block i (i = 0 .. depth-1) has 2**(wf+i) channels: Conv3x3 (padding int(padding)) -> ReLU ->
[BatchNorm] -> Conv3x3 -> ReLU -> [BatchNorm] (batch norm after the ReLU, as the original);
``F.avg_pool2d(x, 2)`` after every down block but the last (the tutorial's change from jvanvugt's
max pooling). Up block i (i = depth-2 .. 0): ConvTranspose2d(k=2, s=2) to 2**(wf+i) channels (or
bilinear x2 then a 1x1 convolution with ``up_mode="upsample"``), the skip connection centre-cropped
and concatenated after the upsampled map, then a conv block. A 1x1 convolution gives the logits.

Module and parameter names are the original's (``down_path.0.block.0.weight``, ``up_path.2.conv_block.block.3``,
``last``), so a state dict of the original loads. Parameters: 122,466 for the tutorial's
configuration (depth 5, wf 2, padding, batch norm, upconv, 3 -> 2 channels), 31,043,586 with wf 6.
With padding, the input side must be a multiple of 2**(depth-1) for the output to match it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The tutorial's configuration (train_unet_albumentations.py), in the checkpoint's key names.
DEFAULT_ARCH = {
    "n_classes": 2,
    "in_channels": 3,
    "padding": True,
    "depth": 5,
    "wf": 2,
    "up_mode": "upconv",
    "batch_norm": True,
}
ARCH_KEYS = tuple(DEFAULT_ARCH)


class UNetConvBlock(nn.Module):
    """Two 3x3 convolutions, each followed by ReLU and (optionally) batch norm."""

    def __init__(self, in_size: int, out_size: int, padding: bool, batch_norm: bool):
        super().__init__()
        block: list[nn.Module] = [nn.Conv2d(in_size, out_size, kernel_size=3, padding=int(padding)), nn.ReLU()]
        if batch_norm:
            block.append(nn.BatchNorm2d(out_size))
        block += [nn.Conv2d(out_size, out_size, kernel_size=3, padding=int(padding)), nn.ReLU()]
        if batch_norm:
            block.append(nn.BatchNorm2d(out_size))
        self.block = nn.Sequential(*block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNetUpBlock(nn.Module):
    """Upsample x2, concatenate the centre-cropped skip connection, conv block."""

    def __init__(self, in_size: int, out_size: int, up_mode: str, padding: bool, batch_norm: bool):
        super().__init__()
        if up_mode == "upconv":
            self.up: nn.Module = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2)
        elif up_mode == "upsample":
            self.up = nn.Sequential(
                nn.Upsample(mode="bilinear", scale_factor=2), nn.Conv2d(in_size, out_size, kernel_size=1)
            )
        else:
            raise ValueError(f"up_mode {up_mode!r} is not 'upconv' or 'upsample'")
        self.conv_block = UNetConvBlock(in_size, out_size, padding, batch_norm)

    @staticmethod
    def center_crop(layer: torch.Tensor, target: torch.Size) -> torch.Tensor:
        _, _, h, w = layer.size()
        dy, dx = (h - target[0]) // 2, (w - target[1]) // 2
        return layer[:, :, dy : dy + target[0], dx : dx + target[1]]

    def forward(self, x: torch.Tensor, bridge: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        return self.conv_block(torch.cat([up, self.center_crop(bridge, up.shape[2:])], 1))


class UNet(nn.Module):
    """``UNet(in_channels, n_classes, depth, wf, padding, batch_norm, up_mode)``: N x in x H x W ->
    N x n_classes x H' x W' logits (H' = H with padding and H a multiple of 2**(depth-1))."""

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        depth: int = 5,
        wf: int = 6,
        padding: bool = False,
        batch_norm: bool = False,
        up_mode: str = "upconv",
    ):
        super().__init__()
        if up_mode not in ("upconv", "upsample"):
            raise ValueError(f"up_mode {up_mode!r} is not 'upconv' or 'upsample'")
        self.padding = padding
        self.depth = depth
        prev = in_channels
        self.down_path = nn.ModuleList()
        for i in range(depth):
            self.down_path.append(UNetConvBlock(prev, 2 ** (wf + i), padding, batch_norm))
            prev = 2 ** (wf + i)
        self.up_path = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            self.up_path.append(UNetUpBlock(prev, 2 ** (wf + i), up_mode, padding, batch_norm))
            prev = 2 ** (wf + i)
        self.last = nn.Conv2d(prev, n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = []
        for i, down in enumerate(self.down_path):
            x = down(x)
            if i != len(self.down_path) - 1:
                blocks.append(x)
                x = F.avg_pool2d(x, 2)
        for i, up in enumerate(self.up_path):
            x = up(x, blocks[-i - 1])
        return self.last(x)


def build(arch: dict) -> UNet:
    """A UNet from checkpoint-style hyper-parameters (the keys of :data:`DEFAULT_ARCH`)."""
    return UNet(**{k: arch[k] for k in ARCH_KEYS})


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters, as the original printed them (``sum(np.prod(p.size()))``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
