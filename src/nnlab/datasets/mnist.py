"""mnist and mnist56: the real MNIST digits (mnist.npz or the four IDX files) and its 5-vs-6 subset."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from pydantic import Field

from nnlab.datasets.base import (
    DATASETS,
    DataParams,
    Dataset,
    DatasetSpec,
    ImageFormat,
    check_path,
    data_places,
    keras_download,
    not_found,
    read_npy,
    read_npz,
    split_off,
    take_first,
)
from nnlab.datasets.images import AugmentParams, augment_spec
from nnlab.errors import ConfigError

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class MnistParams(DataParams):
    path: str | None = Field(None, description="mnist.npz or a folder with the IDX files")
    normalize: bool = Field(True, description="scale pixels to [0, 1]")
    flatten: bool = Field(False, description="784 features instead of 28x28x1 images")
    download: bool = Field(True, description="try Keras's download when no local file is found")
    augment: AugmentParams | None = Field(None, description="random flip/shift/rotate while training (images only)")

    def image_format(self) -> ImageFormat:
        return ImageFormat("L", (28, 28), 255.0 if self.normalize else 1.0, self.flatten)


class Mnist56Params(DataParams):
    n_train: int | None = Field(2000, ge=1, description="training 5s and 6s (the lab used 2,000)")
    path: str | None = Field(None, description="the course's mnist56.npy, mnist.npz or an IDX folder")
    normalize: bool = Field(True, description="scale pixels to [0, 1] (a .npy already in [0, 1] is left as is)")
    download: bool = True
    augment: AugmentParams | None = Field(None, description="random flip/shift/rotate while training")
    allow_pickle: bool = Field(False, description="read the course's mnist56.npy, a pickled object array (trusted files only)")

    def image_format(self) -> ImageFormat:
        return ImageFormat("L", (28, 28), 255.0 if self.normalize else 1.0)


MAX_IDX_BYTES = 1 << 30  # the full MNIST training images are 47 MB


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally .gz): big-endian magic, dimension sizes, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 4:
                raise ConfigError(f"{path}: not an IDX file of unsigned bytes (expected the MNIST format)")
            dims = f.read(4 * head[3])
            if len(dims) < 4 * head[3]:
                raise ConfigError(f"{path}: truncated IDX file (the header is cut short)")
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(head[3]))
            size = int(np.prod(shape, dtype=np.int64))
            if size > MAX_IDX_BYTES:
                raise ConfigError(f"{path}: IDX header claims {shape}, more than {MAX_IDX_BYTES >> 20} MiB")
            raw = f.read(size)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ConfigError(f"{path}: not a readable IDX file ({type(exc).__name__}: {str(exc)[:80]})") from None
    if len(raw) != size:
        raise ConfigError(f"{path}: truncated IDX file ({len(raw):,} of {size:,} data bytes for shape {shape})")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def read_mnist(path: str | None = None, download: bool = True) -> tuple[dict[str, np.ndarray], str]:
    """The four MNIST arrays (uint8 images, labels) and where they came from."""
    check_path(path)
    places = data_places("mnist", path)
    for folder in places:
        npz = folder if folder.is_file() else folder / "mnist.npz"
        if npz.is_file():
            return _checked(read_npz(npz, tuple(IDX_FILES)), npz), str(npz)
        files = {k: _idx_file(folder, stem) for k, stem in IDX_FILES.items()}
        if folder.is_dir() and all(files.values()):
            return _checked({k: read_idx(f) for k, f in files.items()}, folder), str(folder)
    hint = ""
    if download:
        arrays, hint = keras_download("mnist")
        if arrays is not None:
            return arrays, "keras download"
    wanted = "mnist.npz or " + ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    raise not_found("mnist", wanted, places, hint)


def _checked(arrays: dict[str, np.ndarray], where: Path) -> dict[str, np.ndarray]:
    """MNIST's shapes: N x 28 x 28 images and N labels per split."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or not np.issubdtype(x.dtype, np.number):
            raise ConfigError(f"{where}: x_{split} {x.shape} and y_{split} {y.shape}: expected N x 28 x 28 images "
                              "and N labels")
    return arrays


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _images(x: np.ndarray, normalize: bool, flatten: bool) -> np.ndarray:
    x = x.astype("float32")[..., None]
    if normalize:
        x /= 255.0
    return x.reshape(len(x), -1) if flatten else x


@DATASETS.register(MnistParams)
def load_mnist(n_train=None, n_val=None, val_split=None, seed=0, path=None, normalize=True, flatten=False, download=True,
               augment=None) -> Dataset:
    """Real MNIST, 28x28 digits, 10 classes; validation is the 10,000 test images unless val_split is set."""
    arrays, source = read_mnist(path, download)
    x_train = _images(arrays["x_train"], normalize, flatten)
    x_test = _images(arrays["x_test"], normalize, flatten)
    y_train, y_test = arrays["y_train"].astype("int32"), arrays["y_test"].astype("int32")
    if val_split is None:
        x_val, y_val, x_test, y_test = x_test, y_test, None, None
    else:
        x_train, x_val, y_train, y_val = split_off(x_train, y_train, val_split, seed, stratify=True)
    x_train, y_train = take_first(n_train, x_train, y_train)
    x_val, y_val = take_first(n_val, x_val, y_val)
    if flatten and augment_spec(augment):
        raise ConfigError("data.augment: needs images; drop data.flatten (the mlp model flattens images itself)")
    spec = DatasetSpec("multiclass", x_train.shape[1:], 10, class_names=tuple(str(d) for d in range(10)),
                       augment=augment_spec(augment),
                       image_format=MnistParams(normalize=normalize, flatten=flatten).image_format())
    return Dataset(x_train, y_train, x_val, y_val, spec, x_test, y_test, meta={"source": "real", "path": source})


@DATASETS.register(Mnist56Params)
def load_mnist56(n_train=2000, n_val=None, val_split=None, seed=0, path=None, normalize=True, download=True,
                 augment=None, allow_pickle=False) -> Dataset:
    """MNIST 5s vs 6s, binary (5 -> 0, 6 -> 1); validation is every 5 and 6 of the test set (1,850)."""
    if path and Path(path).suffix == ".npy":
        check_path(path)
        x_train, y_train, x_val, y_val = _read_mnist56_npy(Path(path).expanduser(), allow_pickle)
        if normalize and max(x_train.max(), x_val.max()) > 1:
            x_train, x_val = x_train / 255.0, x_val / 255.0
        source = path
    else:
        arrays, source = read_mnist(path, download)
        x_train, y_train = _five_six(arrays["x_train"], arrays["y_train"], normalize)
        x_val, y_val = _five_six(arrays["x_test"], arrays["y_test"], normalize)
        order = np.random.default_rng(seed).permutation(len(x_train))  # a random 2,000, not the first
        x_train, y_train = x_train[order], y_train[order]
    if val_split is not None:
        x_train, x_val, y_train, y_val = split_off(x_train, y_train, val_split, seed, stratify=True)
    x_train, y_train = take_first(n_train, x_train, y_train)
    x_val, y_val = take_first(n_val, x_val, y_val)
    spec = DatasetSpec("binary", x_train.shape[1:], 1, class_names=("5", "6"), augment=augment_spec(augment),
                       image_format=Mnist56Params(normalize=normalize).image_format())
    return Dataset(x_train, y_train, x_val, y_val, spec, meta={"source": "real", "path": source})


def _read_mnist56_npy(path: Path, allow_pickle: bool) -> tuple[np.ndarray, ...]:
    """The course's mnist56.npy: an object array (xtrain, ytrain, xval, yval), labels 0 (five) and 1 (six)."""
    parts = read_npy(path, allow_pickle)
    try:
        x_train, y_train, x_val, y_val = parts
        x_train, x_val = (np.asarray(x, dtype="float32") for x in (x_train, x_val))
        y_train, y_val = (np.asarray(y, dtype="float32").reshape(-1) for y in (y_train, y_val))
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"data.path: {path}: expected the course's mnist56.npy (xtrain, ytrain, xval, yval): "
                          f"{type(exc).__name__}") from None
    if x_train.ndim == 3:
        x_train, x_val = x_train[..., None], x_val[..., None]
    if x_train.ndim != 4 or len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ConfigError(f"data.path: {path}: image and label counts or shapes do not match")
    if not set(np.unique(np.concatenate([y_train, y_val]))) <= {0.0, 1.0}:
        raise ConfigError(f"data.path: {path}: labels must be 0 (five) and 1 (six)")
    return x_train, y_train, x_val, y_val


def _five_six(x: np.ndarray, y: np.ndarray, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    keep = (y == 5) | (y == 6)
    return _images(x[keep], normalize, flatten=False), (y[keep] == 6).astype("float32")
