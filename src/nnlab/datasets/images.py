"""Options shared by image loaders: on-the-fly augmentation (`data.augment`) and PNG reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nnlab.errors import ConfigError
from nnlab.registry import Params


class AugmentParams(Params):
    """Random changes applied to each training batch (Keras preprocessing layers; off at evaluation)."""

    flip: Literal["horizontal", "vertical", "horizontal_and_vertical"] | None = Field(
        None, description="random mirror images")
    shift: float = Field(0.0, ge=0, lt=1, description="random shift, as a fraction of height and width")
    rotate: float = Field(0.0, ge=0, le=180, description="random rotation, up to this many degrees either way")


def augment_spec(augment: dict[str, Any] | AugmentParams | None) -> dict[str, Any] | None:
    """The DatasetSpec.augment value for a loader's `augment` option (None when nothing is switched on)."""
    if augment is None:
        return None
    params = AugmentParams.model_validate(augment) if isinstance(augment, dict) else augment
    if params.flip is None and not params.shift and not params.rotate:
        return None
    return params.model_dump()


def read_png_channel(path: Path, channel: int = 0) -> np.ndarray:
    """One channel of a PNG as a uint8 (height, width) array (the course read channel 0)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read as PNG ({type(exc).__name__})") from None
    if array.ndim == 3:
        array = array[..., channel]
    return to_uint8(array)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """A picture's values as 0..255 bytes: 16-bit or boolean pictures rescaled by their maximum."""
    if array.dtype == np.uint8:
        return array
    return (array.astype("float64") / max(float(array.max()), 1.0) * 255).round().astype(np.uint8)
