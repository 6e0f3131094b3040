"""CIFAR-10, online or offline, held in memory as uint8 tensors, with fast tensor-based batching.

Where the images come from, in order:

1. ``data_dir`` (notebooks pass ``settings().data_dir``, i.e. ``VGG_DATA_DIR``): a folder holding either
   the canonical python batches (``cifar-10-batches-py/data_batch_1`` ...) or an image-folder layout
   (``train/<class>/*.jpg|png``, ``test/<class>/*``), classes named as in ``CIFAR10_CLASSES``;
2. otherwise torchvision's download (MD5 checksum verified) into ``cache_dir``
   (default ``~/.cache/vgg-from-scratch``; notebooks pass ``settings().cache_dir``, i.e. ``VGG_CACHE_DIR``).

Decoded image folders are cached as ``.npz`` in ``cache_dir`` (written atomically), so a second load takes
a second instead of half a minute. The cache is keyed on every image's name, size and modification time, so a
replaced image is noticed; a damaged cache is rebuilt, with a warning.

The one data path of the book, used by both of its training loops (``training.train`` and ``modern.train_modern``):

* ``make_loaders`` turns the data set and a ``RunBudget`` (how many images, epochs, batch size) into the split,
  the random subsets and the training, validation and test loaders;
* ``normalize_images`` is the one normalisation (CIFAR-10's channel mean and std), what every loader yields;
* ``crop_windows`` and ``flip_where`` are the one augmentation: a window of each padded image at its own offset
  (random crops and translations) and mirror images where a mask says so.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch

from .checks import describe, flag, whole_number
from .files import atomic_write
from .settings import DEFAULT_CACHE_DIR

__all__ = ["CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "DataNotFoundError", "CIFAR10", "load_cifar10",
           "RunBudget", "split_train_val", "random_subset", "normalize_images", "crop_windows", "flip_where",
           "TensorLoader", "Loaders", "make_loaders", "check_labelled_images"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and std of the 50,000 training images (pixel values scaled to [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass(frozen=True)
class RunBudget:
    """The size of one training run: how many images, how many passes, how many images per step."""

    train_size: Optional[int]   # training images used per epoch (None = all left after the validation split)
    val_size: int               # images carved from the training set for validation (model selection)
    epochs: int                 # passes over the training images
    batch_size: int             # images per optimiser step
    test_size: Optional[int] = None  # test images evaluated (None = all 10,000)

    def __post_init__(self) -> None:
        for name, minimum in (("val_size", 0), ("epochs", 1), ("batch_size", 1)):
            object.__setattr__(self, name, whole_number(name, getattr(self, name), minimum))
        for name in ("train_size", "test_size"):
            object.__setattr__(self, name, whole_number(name, getattr(self, name), 1, none_means="all"))


class DataNotFoundError(RuntimeError):
    """No CIFAR-10 files were found and they could not be downloaded."""


@dataclass
class CIFAR10:
    """The whole data set in memory.

    Attributes:
        train_images: uint8 tensor (50000, 3, 32, 32).
        train_labels: int64 tensor (50000,), values 0..9 in ``CIFAR10_CLASSES`` order.
        test_images: uint8 tensor (10000, 3, 32, 32).
        test_labels: int64 tensor (10000,).
        source: which copy of CIFAR-10 this is, in words and without paths (printed by the notebooks).
        location: the folder it was read from (this machine's path: not for printed output).
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    classes: tuple = CIFAR10_CLASSES
    location: str = ""


def _help_text(cache_dir: Path) -> str:
    return (
        "Put CIFAR-10 in a folder and point VGG_DATA_DIR (or data_dir=...) at it. The folder may hold either "
        "'cifar-10-batches-py/' (the python version from https://www.cs.toronto.edu/~kriz/cifar.html, "
        "unpacked) or an image-folder layout 'train/<class>/*.jpg' and 'test/<class>/*.jpg' with the classes "
        f"{', '.join(CIFAR10_CLASSES)}. Or connect to the internet and it is downloaded into {cache_dir}.")


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _read_batches(folder: Path) -> CIFAR10:
    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = folder / name
        try:
            with open(path, "rb") as f:
                d = pickle.load(f, encoding="latin1")
            return np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(d["labels"])
        except FileNotFoundError:
            raise DataNotFoundError(f"{path} is missing: a 'cifar-10-batches-py' folder needs data_batch_1..5 "
                                    "and test_batch.") from None
        except Exception as e:
            raise DataNotFoundError(f"Cannot read CIFAR-10 batch file {path}: {e}") from e

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    tx, ty = read("test_batch")
    return CIFAR10(torch.from_numpy(np.concatenate([p[0] for p in parts])),
                   torch.from_numpy(np.concatenate([p[1] for p in parts])).long(),
                   torch.from_numpy(tx), torch.from_numpy(ty).long(), source="CIFAR-10 (python batches)",
                   location=str(folder))


def _folder(name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or pathlib.Path); got {describe(value)}.")
    return Path(value).expanduser()


def _image_files(folder: Path) -> list[os.DirEntry]:
    """The image files of one class folder, by name; hidden files (e.g. macOS's ``._0001.jpg``) are skipped."""
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".") and e.is_file()
                       and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES), key=lambda e: e.name)


def _list_split(folder: Path) -> list[list[os.DirEntry]]:
    """The image files of ``train/`` or ``test/``, one list per class in ``CIFAR10_CLASSES`` order, checked."""
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder} is missing: an image-folder copy of CIFAR-10 needs train/ and test/.")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    missing = [c for c in CIFAR10_CLASSES if c not in found]
    extra = [c for c in found if c not in CIFAR10_CLASSES]
    if missing or extra:
        raise DataNotFoundError(
            f"{folder} must hold exactly the ten CIFAR-10 class folders ({', '.join(CIFAR10_CLASSES)}); "
            + (f"missing: {', '.join(missing)}. " if missing else "")
            + (f"unexpected: {', '.join(extra)}." if extra else ""))
    files = [_image_files(folder / cls) for cls in CIFAR10_CLASSES]
    for cls, images in zip(CIFAR10_CLASSES, files):
        if not images:
            others = sorted(n for n in os.listdir(folder / cls) if not n.startswith("."))
            raise DataNotFoundError(
                f"{folder / cls} holds no images: every class folder of train/ and test/ needs at least one image "
                f"file ({', '.join(sorted(IMAGE_SUFFIXES))})"
                + (f"; it holds {len(others)} other file{'s' if len(others) > 1 else ''}, e.g. {others[0]}."
                   if others else "."))
    return files


def _labels(files: list[list[os.DirEntry]]) -> np.ndarray:
    return np.repeat(np.arange(len(files), dtype=np.int64), [len(f) for f in files])


def _decode(files: list[list[os.DirEntry]]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    images = []
    for path in (Path(e.path) for class_files in files for e in class_files):
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataNotFoundError(f"Cannot read image {path}: {e}. Replace or delete the file.") from e
        if arr.shape != (32, 32, 3):
            raise DataNotFoundError(f"Image {path} is {arr.shape[1]}x{arr.shape[0]}; CIFAR-10 images are 32x32.")
        images.append(arr)
    return np.stack(images).transpose(0, 3, 1, 2).copy()


def _content_key(splits: dict[str, list[list[os.DirEntry]]]) -> str:
    """A hash of every image's path, size and modification time: an image rewritten in place changes it."""
    stamp = []
    for split, files in splits.items():
        for cls, class_files in zip(CIFAR10_CLASSES, files):
            for e in class_files:
                st = e.stat()
                stamp.append(f"{split}/{cls}/{e.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(stamp).encode()).hexdigest()[:16]


def _read_cache(cache: Path, expected: dict[str, np.ndarray]) -> Optional[dict[str, np.ndarray]]:
    """The cached arrays, or ``None`` (after a warning) when the file cannot be read or does not fit the folder."""
    try:
        with np.load(cache) as z:
            arrays = {k: z[k] for k in ("xtr", "ytr", "xte", "yte")}
        for x, y in (("xtr", "ytr"), ("xte", "yte")):
            n = len(expected[y])
            if arrays[x].dtype != np.uint8 or arrays[x].shape != (n, 3, 32, 32):
                raise ValueError(f"{x} is {arrays[x].dtype} {arrays[x].shape}, expected uint8 {(n, 3, 32, 32)}")
            if not np.array_equal(arrays[y], expected[y]):
                raise ValueError(f"{y} does not match the class folders")
        return arrays
    except Exception as e:  # BadZipFile, EOFError, ValueError, KeyError, OSError, ...: all mean "rebuild it"
        warnings.warn(f"The decoded-image cache {cache} cannot be used ({type(e).__name__}: {e}); rebuilding it "
                      "from the images.", stacklevel=4)
        return None


def _read_image_folder(root: Path, cache_dir: Path) -> CIFAR10:
    splits = {split: _list_split(root / split) for split in ("train", "test")}
    expected = {"ytr": _labels(splits["train"]), "yte": _labels(splits["test"])}
    root_key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    cache = cache_dir / f"cifar10-imagefolder-{root_key}-{_content_key(splits)}.npz"
    jpeg = any(e.name.lower().endswith((".jpg", ".jpeg")) for f in splits["train"] for e in f)
    source = ("CIFAR-10 JPEG copy (lossy: accuracy can differ a little from the official data)"
              if jpeg else "CIFAR-10 (image folder)")
    arrays = _read_cache(cache, expected) if cache.exists() else None
    if arrays is None:
        arrays = dict(xtr=_decode(splits["train"]), xte=_decode(splits["test"]), **expected)
        try:
            _atomic_save_npz(cache, **arrays)
            for stale in cache_dir.glob(f"cifar10-imagefolder-{root_key}-*.npz"):   # earlier contents of root
                if stale != cache:
                    stale.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only cache folder only costs speed
    return CIFAR10(*(torch.from_numpy(arrays[k]) for k in ("xtr", "ytr", "xte", "yte")), source=source,
                   location=str(root))


def _download(cache_dir: Path) -> CIFAR10:
    import torchvision

    try:
        tv_train = torchvision.datasets.CIFAR10(str(cache_dir), train=True, download=True)
        tv_test = torchvision.datasets.CIFAR10(str(cache_dir), train=False, download=True)
    except Exception as e:  # URLError, timeouts, checksum failures, ... all become one clear message
        raise DataNotFoundError(f"CIFAR-10 is not on this machine and downloading it failed "
                                f"({type(e).__name__}: {e}). {_help_text(cache_dir)}") from None
    def to_tensor(ds) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)
    return CIFAR10(*to_tensor(tv_train), *to_tensor(tv_test), source="CIFAR-10 (downloaded)",
                   location=str(cache_dir))


def load_cifar10(data_dir: Optional[str | os.PathLike] = None, download: bool = True,
                 cache_dir: Optional[str | os.PathLike] = None) -> CIFAR10:
    """Load CIFAR-10 into memory.

    Args:
        data_dir: folder with ``cifar-10-batches-py`` or ``train/<class>/`` + ``test/<class>/`` (notebooks pass
            ``settings().data_dir``); ``~`` is expanded. When it is ``None`` (or ``""``), the data set is downloaded.
        download: allow the download (off: raise ``DataNotFoundError`` instead).
        cache_dir: where downloads and decoded-image caches go; default ``~/.cache/vgg-from-scratch``. A cache that
            no longer matches the images (one was replaced) is not used; a damaged one is rebuilt, with a warning.
    Returns:
        A ``CIFAR10`` with uint8 images (N, 3, 32, 32) and int64 labels.
    Raises:
        DataNotFoundError: no data, no network, a file or a train/ folder given as ``data_dir``, a corrupt image, a
            class folder without images, or a missing/extra class folder; the message says which file or folder
            and what to do.
        TypeError: ``data_dir`` or ``cache_dir`` is not a path, or ``download`` not a bool.
        NotADirectoryError: ``cache_dir`` is a file.
    """
    cache = _folder("cache_dir", cache_dir) if cache_dir else DEFAULT_CACHE_DIR
    if cache.exists() and not cache.is_dir():
        raise NotADirectoryError(f"cache_dir {cache} is a file, not a folder: point cache_dir (VGG_CACHE_DIR) at a "
                                 "folder (it is created if missing).")
    download = flag("download", download)
    if data_dir is not None and not (isinstance(data_dir, str) and data_dir == ""):
        root = _folder("data_dir", data_dir)
        if root.is_file():
            unpack = (f" Unpack it first (tar xzf {root.name}) and point data_dir at the folder it unpacks into."
                      if root.name.endswith((".tar.gz", ".tgz", ".tar", ".zip")) else "")
            raise DataNotFoundError(f"{root} is a file, not a folder: data_dir must be the folder that holds "
                                    f"'cifar-10-batches-py/' or 'train/' and 'test/'.{unpack}")
        if not root.is_dir():
            raise DataNotFoundError(f"The data folder {root} does not exist. {_help_text(cache)}")
        if root.name == "cifar-10-batches-py":
            return _read_batches(root)
        if (root / "cifar-10-batches-py").is_dir():
            return _read_batches(root / "cifar-10-batches-py")
        if (root / "train").is_dir() or (root / "test").is_dir():
            return _read_image_folder(root, cache)
        if any((root / cls).is_dir() for cls in CIFAR10_CLASSES):
            raise DataNotFoundError(f"{root} holds the class folders itself: it looks like a train/ or test/ "
                                    f"folder. Point data_dir at the folder above it ({root.parent}), which must hold "
                                    "both train/ and test/.")
        if (root / "cifar-10-python.tar.gz").is_file():
            raise DataNotFoundError(f"{root} holds cifar-10-python.tar.gz but not the folder inside it: unpack it "
                                    f"there (tar xzf cifar-10-python.tar.gz), then load {root} again.")
        below = [p for p in sorted(root.iterdir()) if p.is_dir() and ((p / "cifar-10-batches-py").is_dir()
                                                                      or (p / "train").is_dir())]
        guess = f" Did you mean {below[0]}?" if below else ""
        raise DataNotFoundError(f"{root} holds neither 'cifar-10-batches-py/' nor 'train/' and 'test/' folders."
                                f"{guess} {_help_text(cache)}")
    if (cache / "cifar-10-batches-py").is_dir():
        return _read_batches(cache / "cifar-10-batches-py")
    if not download:
        raise DataNotFoundError(f"CIFAR-10 is not on this machine and download=False. {_help_text(cache)}")
    return _download(cache)


def split_train_val(num_train: int, val_size: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Carve a validation set out of the training set, the same way for the same seed.

    Args:
        num_train: number of training images.
        val_size: how many go to validation (used for model selection; the test set stays for the final number).
        seed: seed of the permutation.
    Returns:
        (train_indices, val_indices), disjoint, together covering ``range(num_train)``.
    Raises:
        TypeError: a size or the seed is not a whole number (a fraction such as ``val_size=0.1`` included).
        ValueError: ``num_train < 1``, or ``val_size`` negative or leaving no training image.
    """
    num_train = whole_number("num_train", num_train, 1)
    fraction = isinstance(val_size, float) and 0 < val_size < 1
    val_size = whole_number("val_size", val_size, 0,
                             fix=" For a fraction of the images, pass round(fraction * num_train)." if fraction else "")
    if val_size >= num_train:
        raise ValueError(f"val_size must be between 0 and {num_train - 1} (at least one image must stay for "
                         f"training); got {val_size}.")
    seed = whole_number("seed", seed)
    perm = torch.randperm(num_train, generator=torch.Generator().manual_seed(seed % 2**64))
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def random_subset(indices: torch.Tensor, size: Optional[int], seed: int = 0) -> torch.Tensor:
    """A seeded random subset of ``indices``, in ascending order.

    Never take the first ``size`` images instead: the image-folder copy is sorted by class, so they would all
    be airplanes.

    Args:
        indices: the indices to choose from (e.g. the training half of ``split_train_val``); a 1-D integer tensor
            (a list or range works too).
        size: how many to keep; ``None`` (or at least ``len(indices)``) keeps them all.
        seed: seed of the choice.
    Returns:
        The chosen indices.
    Raises:
        TypeError: ``indices`` not integers, or ``size`` / ``seed`` not whole numbers.
        ValueError: ``indices`` not 1-D, or ``size`` negative.
    """
    indices = torch.as_tensor(indices)
    if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
        raise TypeError(f"indices must be integer indices (a 1-D tensor such as torch.arange(n)); got {indices.dtype}.")
    if indices.dim() != 1:
        raise ValueError(f"indices must be a 1-D tensor of indices; got shape {tuple(indices.shape)}.")
    size = whole_number("size", size, 0, none_means="all")
    seed = whole_number("seed", seed)
    if size is None or size >= len(indices):
        return indices
    perm = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed % 2**64))
    return indices[perm[:size]].sort().values


def _tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (or a numpy array); got {describe(value)}.")
    return value


def _check_images(images: torch.Tensor) -> None:
    shape = tuple(images.shape)
    if images.dim() != 4 or shape[1] != 3:
        fix = (" For one image, add the batch dimension: images.unsqueeze(0)." if images.dim() == 3 and shape[0] == 3
               else " They look like (N, H, W, 3): pass images.permute(0, 3, 1, 2)." if images.dim() == 4
               and shape[3] == 3 else " For grayscale images, repeat the channel: images.expand(-1, 3, -1, -1)."
               if images.dim() == 4 and shape[1] == 1 else "")
        raise ValueError(f"images must have shape (N, 3, H, W): N RGB images, channels first; got {shape}.{fix}")
    if images.dtype != torch.uint8:
        fix = (" If yours are floats in [0, 1], pass (images * 255).round().to(torch.uint8)."
               if images.dtype.is_floating_point else "")
        raise ValueError(f"images must be uint8 pixel values 0..255 (as load_cifar10 gives them; the loader "
                         f"normalises them itself); got {images.dtype}.{fix}")
    if len(images) == 0:
        raise ValueError("images is empty (0 images): a loader needs at least one image. Check the sizes that "
                         "chose them (e.g. RunBudget.train_size, test_size).")


def check_labelled_images(images: Any, labels: Any, num_classes: Optional[int] = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """The checks every path from images to training shares (``TensorLoader``, ``modern.train_modern``).

    Args:
        images: uint8 pixel values (N, 3, H, W), N >= 1 (a numpy array works too).
        labels: integer class indices (N,), each ``0 <= label < num_classes``.
        num_classes: the network's number of outputs (``None``: only ``label >= 0`` is checked).
    Returns:
        ``(images, labels)`` as tensors.
    Raises:
        TypeError: not tensors, or labels that are not integers.
        ValueError: images not uint8 (N, 3, H, W) or empty, labels not 1-D, not one per image, or out of range.
    """
    images, labels = _tensor("images", images), _tensor("labels", labels)
    _check_images(images)
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices; got {labels.dtype}. If they hold whole numbers, "
                        "pass labels.long().")
    if labels.dim() != 1:
        one_hot = " If they are one-hot, pass labels.argmax(1)." if labels.dim() == 2 else ""
        raise ValueError(f"labels must be 1-D (N,), one class index per image; got shape "
                         f"{tuple(labels.shape)}.{one_hot}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: give one label per image.")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or (num_classes is not None and high >= num_classes):
        allowed = f"0 to {num_classes - 1}" if num_classes is not None else "0 or more"
        fix = (f" The network has {num_classes} outputs: build it with num_classes={high + 1} or more, or relabel "
               "the images." if num_classes is not None and low >= 0 else "")
        raise ValueError(f"labels must be class indices {allowed}; got values from {low} to {high}.{fix}")
    return images, labels


def _device(device: Any) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'mps' or a torch.device; got {describe(device)}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device='{device}' but this machine has no usable CUDA GPU: use device='cpu' (or "
                         "vgg_helpers.runtime.pick_device(), which picks what there is).")
    return device


def normalize_images(images: torch.Tensor, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 images ``(N, 3, H, W)`` as float32, normalised per channel with CIFAR-10's mean and std.

    The one normalisation of the book: every loader's batches and the modern VGG's training images go through it.

    Args:
        images: pixel values 0..255.
        device: where the result goes (default: where ``images`` are).
    Returns:
        ``(images - 255 * mean) / (255 * std)``, channel by channel.

    >>> [round(v, 3) for v in normalize_images(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)).flatten().tolist()]
    [2.059, 2.126, 2.116]
    """
    x = images.to(device) if device is not None else images
    mean = torch.tensor(CIFAR10_MEAN, device=x.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(CIFAR10_STD, device=x.device).view(1, 3, 1, 1) * 255
    return (x.float() - mean) / std


def crop_windows(padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
                 size: int | tuple[int, int]) -> torch.Tensor:
    """The window of every padded image at its own offset: random crops and translations.

    Args:
        padded: images padded by ``p`` pixels on every side, ``(N, C, H + 2p, W + 2p)`` (any dtype).
        dy, dx: ``(N,)`` offsets of each window's top-left corner, 0 .. 2p (``p, p`` is the unshifted image).
        size: the windows' side, or ``(height, width)``.
    Returns:
        ``(N, C, height, width)``, on ``padded``'s device.

    >>> img = torch.arange(16).view(1, 1, 4, 4)
    >>> crop_windows(img, torch.tensor([1]), torch.tensor([2]), 2).tolist()
    [[[[6, 7], [10, 11]]]]
    """
    n, c = padded.shape[:2]
    h, w = (size, size) if isinstance(size, int) else size
    dev = padded.device
    rows = (dy.to(dev).view(n, 1) + torch.arange(h, device=dev)).view(n, 1, h, 1)
    cols = (dx.to(dev).view(n, 1) + torch.arange(w, device=dev)).view(n, 1, 1, w)
    return padded[torch.arange(n, device=dev).view(n, 1, 1, 1), torch.arange(c, device=dev).view(1, c, 1, 1),
                  rows, cols]


def flip_where(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``images`` with the ones where ``mask`` (``(N,)`` bool) is true mirrored left to right."""
    return torch.where(mask.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


class TensorLoader:
    """Batches from uint8 tensors held in memory, with augmentation done on whole batches in torch.

    Much faster than a PIL-per-image ``DataLoader`` on a small CPU: no decoding, no worker processes.
    The order and the augmentation of epoch ``e`` depend only on ``(seed, e)``, so a resumed run sees exactly
    the batches an uninterrupted run would.

    Args:
        images: uint8 tensor (N, 3, H, W), N >= 1 (a numpy array works too).
        labels: integer tensor (N,) of class indices (converted to int64).
        batch_size: images per batch, a whole number >= 1.
        shuffle: reshuffle every epoch.
        augment: random crop (pad 4, as in the ResNet paper's CIFAR setup) and horizontal flip.
        seed: base seed for order and augmentation (any whole number).
        device: where batches are put (``"cuda"`` moves everything there once).
        drop_last: drop the last incomplete batch (keeps batch-norm statistics stable when training).
        channels_last: return batches in ``torch.channels_last`` memory format.
        transform: a batch transform applied to the uint8 images of every batch after the built-in augmentation
            and before normalisation, e.g. ``vgg_helpers.paper.ScaleJitter`` (it must return uint8 images of the
            network's input size). Its randomness is its own (``ScaleJitter`` is seeded once per run).
        rank, world_size: this process's share when several processes train together (data parallelism): every
            process walks the same order of global batches of ``batch_size`` images and takes its own slice of
            each (rank ``r`` of ``W``: images ``r*B//W`` to ``(r+1)*B//W`` of a batch of ``B``). Augmentation is
            drawn for the whole global batch, so ``W`` processes see exactly the images one process would.
    Raises:
        TypeError: an argument of the wrong type (e.g. ``batch_size=2.5``, float labels, ``shuffle="yes"``).
        ValueError: images not uint8 (N, 3, H, W) or empty, labels not 1-D or not one per image, ``batch_size < 1``,
            ``drop_last`` with fewer images than ``batch_size`` (no batch at all), a device this machine lacks,
            ``rank`` not below ``world_size``, or ``drop_last`` with a ``batch_size`` that ``world_size`` does not
            divide (the training shares would differ in size, and averaging them would not give the batch's gradient).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128, shuffle: bool = False,
                 augment: bool = False, seed: int = 0, device: str | torch.device = "cpu", drop_last: bool = False,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1,
                 transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> None:
        images, labels = check_labelled_images(images, labels)
        batch_size = whole_number("batch_size", batch_size, 1)
        if drop_last and len(images) < batch_size:
            raise ValueError(f"drop_last=True with {len(images)} images and batch_size={batch_size} would give no "
                             f"batches: use a batch_size of at most {len(images)}, or drop_last=False.")
        seed = whole_number("seed", seed)
        world_size = whole_number("world_size", world_size, 1)
        rank = whole_number("rank", rank, 0, f"below world_size={world_size}", maximum=world_size - 1)
        if drop_last and batch_size % world_size:
            raise ValueError(f"batch_size={batch_size} is not divisible by world_size={world_size}: every process must "
                             f"get the same share of a training batch. Use a batch_size that is a multiple of "
                             f"{world_size}, e.g. {batch_size - batch_size % world_size or world_size}.")
        shuffle, augment, drop_last, channels_last = (flag(name, value) for name, value in (
            ("shuffle", shuffle), ("augment", augment), ("drop_last", drop_last), ("channels_last", channels_last)))
        self.device = _device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size, self.shuffle, self.augment, self.seed = batch_size, shuffle, augment, seed
        self.drop_last, self.channels_last = drop_last, channels_last
        self.rank, self.world_size = rank, world_size
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be a function of a uint8 batch (N, 3, H, W), e.g. ScaleJitter(32, 64, "
                            f"crop=32); got {describe(transform)}.")
        self.transform = transform
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def dataset_size(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's order and augmentation the next iteration produces (a whole number >= 0)."""
        self.epoch = whole_number("epoch", epoch, 0)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float32 on the loader's device, normalised (``normalize_images``)."""
        return normalize_images(x, self.device)

    def _transformed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.transform(x)
        if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or out.dim() != 4 or len(out) != len(x):
            got = f"{out.dtype} {tuple(out.shape)}" if isinstance(out, torch.Tensor) else describe(out)
            raise ValueError(f"the loader's transform must return a uint8 batch (N, 3, H, W) of {len(x)} images; "
                             f"got {got}.")
        return out

    def _shard(self, n: int) -> slice:
        """This process's slice of a global batch of ``n`` images (all of it in a single process)."""
        return slice(self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size)

    @staticmethod
    def _draw_augmentation(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flip flags and crop offsets for ``n`` images: the same draws in every process."""
        flip = torch.rand(n, generator=gen, device="cpu") < 0.5
        dx = torch.randint(0, 9, (n,), generator=gen)
        dy = torch.randint(0, 9, (n,), generator=gen)
        return flip, dx, dy

    @staticmethod
    def _augment(x: torch.Tensor, flip: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """Random crop (pad 4 with zeros) and horizontal flip of ``x`` with the drawn flags and offsets."""
        padded = torch.nn.functional.pad(flip_where(x, flip), (4, 4, 4, 4))    # (N, 3, H+8, W+8)
        return crop_windows(padded, dy, dx, tuple(x.shape[-2:]))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) % 2**64)
        n = len(self.images)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]    # the global batch
            mine = self._shard(len(idx))                                   # this process's share of it
            x = self.images[idx[mine]]
            if self.augment:
                x = self._augment(x, *(d[mine] for d in self._draw_augmentation(len(idx), gen)))
            if self.transform is not None:
                x = self._transformed(x)
            x = self.normalize(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx[mine]]


@dataclass
class Loaders:
    """The loaders of one run and the image indices behind them.

    Attributes:
        train: shuffled (and augmented, if asked) training batches; the last incomplete batch is dropped.
        val: the validation hold-out carved from the training set, or ``None`` when ``val_size`` is 0.
        test: the test images (a seeded random subset when the budget asks for one).
        train_idx, val_idx, test_idx: indices into ``data.train_*`` / ``data.test_*``, ascending.
    """

    train: TensorLoader
    val: Optional[TensorLoader]
    test: TensorLoader
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor


def make_loaders(data: CIFAR10, run: RunBudget, seed: int = 0, augment: bool = False,
                 device: str | torch.device = "cpu", channels_last: bool = False, eval_batch_size: int = 500,
                 loader_seed: Optional[int] = None, rank: int = 0, world_size: int = 1,
                 transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> Loaders:
    """Split, subset and batch CIFAR-10 for one run: the one way every chapter and benchmark builds loaders.

    Args:
        data: CIFAR-10 in memory (``load_cifar10``).
        run: ``val_size`` images go to validation; ``train_size`` / ``test_size`` random images are kept
            (``None``: all); batches of ``batch_size``.
        seed: seed of the validation split and of both random subsets.
        augment: random crop + flip on the training batches.
        device: where the batches are put.
        channels_last: batches in ``torch.channels_last`` memory format.
        eval_batch_size: images per validation / test batch.
        loader_seed: seed of the training batches' order and augmentation (default: ``seed``).
        rank, world_size: with several training processes, each loader yields this process's share of every
            batch (``TensorLoader``); ``run.batch_size`` stays the global batch, summed over the processes.
        transform: a batch transform for the training batches only (``TensorLoader``), e.g. scale jittering.
    Returns:
        A ``Loaders``. A ``train_size`` / ``test_size`` above what the data holds keeps all of it.
    Raises:
        TypeError: ``data`` is not a ``CIFAR10``, ``run`` not a ``RunBudget``, or a size or seed not a whole number.
        ValueError: ``run.val_size`` leaves no training images, fewer training images than ``run.batch_size``
            remain (no full batch), or a size is out of range.
    """
    if not isinstance(data, CIFAR10):
        raise TypeError(f"data must be a CIFAR10 (what load_cifar10 returns); got {describe(data)}.")
    if not isinstance(run, RunBudget):
        plan = " Pass plan.run, not the plan." if isinstance(getattr(run, "run", None), RunBudget) else ""
        raise TypeError(f"run must be a RunBudget (a chapter plan's .run); got {type(run).__name__}.{plan}")
    n = len(data.train_labels)
    if n == 0 or len(data.test_labels) == 0:
        raise ValueError(f"data holds {n} training and {len(data.test_labels)} test images: it needs at least one "
                         "of each. Load it with load_cifar10.")
    val_size = whole_number("run.val_size", run.val_size, 0)
    if val_size >= n:
        raise ValueError(f"run.val_size={val_size} leaves no training images: the data has {n} training images. "
                         f"Use a val_size below {n}.")
    train_size = whole_number("run.train_size", run.train_size, 1, none_means="all")
    test_size = whole_number("run.test_size", run.test_size, 1, none_means="all")
    batch_size = whole_number("run.batch_size", run.batch_size, 1)
    kept = n - val_size if train_size is None else min(train_size, n - val_size)
    if kept < batch_size:
        raise ValueError(f"Only {kept} training images are left for this run ({n} in the data, run.val_size={val_size}"
                         f" held out, run.train_size={train_size}), fewer than run.batch_size={batch_size}: training "
                         "would get no full batch. Use a smaller batch_size or val_size, or more training images.")
    eval_batch_size = whole_number("eval_batch_size", eval_batch_size, 1)
    seed = whole_number("seed", seed)
    loader_seed = seed if loader_seed is None else whole_number("loader_seed", loader_seed)
    train_idx, val_idx = split_train_val(n, val_size, seed=seed)
    train_idx = random_subset(train_idx, train_size, seed)
    test_idx = random_subset(torch.arange(len(data.test_labels)), test_size, seed)
    common = dict(device=device, channels_last=channels_last, rank=rank, world_size=world_size)
    train = TensorLoader(data.train_images[train_idx], data.train_labels[train_idx], batch_size, shuffle=True,
                         augment=augment, seed=loader_seed, drop_last=True, transform=transform, **common)
    val = (TensorLoader(data.train_images[val_idx], data.train_labels[val_idx], eval_batch_size, **common)
           if len(val_idx) else None)
    test = TensorLoader(data.test_images[test_idx], data.test_labels[test_idx], eval_batch_size, **common)
    return Loaders(train, val, test, train_idx, val_idx, test_idx)
