"""The one input transform for ResNet crops, shared by training and the predictors.

Crops are stored and cropped as BGR uint8 (OpenCV's order); models see RGB float tensors
normalised with ImageNet statistics, because the backbones are (usually) ImageNet-pretrained.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_crop(crop_bgr: np.ndarray, crop_size: Sequence[int]) -> np.ndarray:
    """Resize one (H, W, 3) uint8 crop to ``crop_size`` = (width, height) when it differs."""
    width, height = int(crop_size[0]), int(crop_size[1])
    if crop_bgr.shape[0] == height and crop_bgr.shape[1] == width:
        return crop_bgr
    shrinking = crop_bgr.shape[0] > height
    return cv2.resize(crop_bgr, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def stack_crops(crops_bgr: Sequence[np.ndarray], crop_size: Sequence[int]) -> np.ndarray:
    """Resize and stack crops into one (N, H, W, 3) uint8 BGR array."""
    width, height = int(crop_size[0]), int(crop_size[1])
    if len(crops_bgr) == 0:
        return np.empty((0, height, width, 3), dtype=np.uint8)
    return np.stack([resize_crop(np.asarray(c, dtype=np.uint8), crop_size) for c in crops_bgr])


def normalize_uint8(batch_bgr: torch.Tensor) -> torch.Tensor:
    """Turn uint8 BGR pixels into normalised RGB floats.

    Args:
        batch_bgr: (..., H, W, 3) uint8 tensor.

    Returns:
        (..., 3, H, W) float32 tensor, RGB, ImageNet-normalised.
    """
    rgb = batch_bgr.flip(-1).movedim(-1, -3).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return rgb.sub_(mean).div_(std)


def crops_to_tensor(crops_bgr: Sequence[np.ndarray], crop_size: Sequence[int] = (224, 224)) -> torch.Tensor:
    """Crops as the models expect them.

    Args:
        crops_bgr: N crops, each (H, W, 3) uint8 BGR (any size; resized here).
        crop_size: model input (width, height); a checkpoint's ``meta["crop_size"]``.

    Returns:
        (N, 3, height, width) float32 tensor, normalised exactly as in training.
    """
    return normalize_uint8(torch.from_numpy(stack_crops(crops_bgr, crop_size)))
