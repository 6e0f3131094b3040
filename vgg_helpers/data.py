"""CIFAR-10, online or offline, held in memory as uint8 tensors, with fast tensor-based batching.

Where the images come from, in order:

1. ``data_dir`` (notebooks pass ``settings().data_dir``, i.e. ``VGG_DATA_DIR``): a folder holding either
   the canonical python batches (``cifar-10-batches-py/data_batch_1`` ...) or an image-folder layout
   (``train/<class>/*.jpg|png``, ``test/<class>/*``), classes named as in ``CIFAR10_CLASSES``;
2. otherwise torchvision's download (MD5 checksum verified) into ``cache_dir``
   (default ``~/.cache/vgg-from-scratch``; notebooks pass ``settings().cache_dir``, i.e. ``VGG_CACHE_DIR``).

Decoded image folders are cached as ``.npz`` in ``cache_dir`` (written atomically), so a second load takes
a second instead of half a minute. ``make_loaders`` turns the data set and a chapter's ``RunBudget`` into the
training, validation and test loaders: every chapter and benchmark builds its loaders through it.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from .budgets import RunBudget
from .files import atomic_write
from .settings import DEFAULT_CACHE_DIR

__all__ = ["CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "DataNotFoundError", "CIFAR10", "load_cifar10",
           "split_train_val", "random_subset", "TensorLoader", "Loaders", "make_loaders"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and std of the 50,000 training images (pixel values scaled to [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


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


def _read_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    if not folder.is_dir():
        raise DataNotFoundError(f"{folder} is missing: an image-folder copy of CIFAR-10 needs train/ and test/.")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    missing = [c for c in CIFAR10_CLASSES if c not in found]
    extra = [c for c in found if c not in CIFAR10_CLASSES]
    if missing or extra:
        raise DataNotFoundError(
            f"{folder} must hold exactly the ten CIFAR-10 class folders ({', '.join(CIFAR10_CLASSES)}); "
            + (f"missing: {', '.join(missing)}. " if missing else "")
            + (f"unexpected: {', '.join(extra)}." if extra else ""))
    images, labels = [], []
    for label, cls in enumerate(CIFAR10_CLASSES):
        for path in sorted((folder / cls).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as im:
                    arr = np.asarray(im.convert("RGB"))
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise DataNotFoundError(f"Cannot read image {path}: {e}. Replace or delete the file.") from e
            if arr.shape != (32, 32, 3):
                raise DataNotFoundError(f"Image {path} is {arr.shape[1]}x{arr.shape[0]}; CIFAR-10 images are 32x32.")
            images.append(arr)
            labels.append(label)
    if not images:
        raise DataNotFoundError(f"No images found under {folder}.")
    return np.stack(images).transpose(0, 3, 1, 2).copy(), np.asarray(labels, dtype=np.int64)


def _read_image_folder(root: Path, cache_dir: Path) -> CIFAR10:
    stamp = [str(root.resolve())]
    for split in ("train", "test"):
        for cls in sorted((root / split).iterdir()) if (root / split).is_dir() else []:
            stamp.append(f"{cls.name}:{cls.stat().st_mtime_ns}:{len(os.listdir(cls)) if cls.is_dir() else 0}")
    key = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:16]
    cache = cache_dir / f"cifar10-imagefolder-{key}.npz"
    source = ("CIFAR-10, JPEG copy (image folder; JPEG compression: accuracies can differ slightly from the "
              "official data)" if any(root.glob("train/*/*.jpg")) else "CIFAR-10 (image folder)")
    if cache.exists():
        with np.load(cache) as z:
            return CIFAR10(*(torch.from_numpy(z[k]) for k in ("xtr", "ytr", "xte", "yte")), source=source,
                           location=str(root))
    xtr, ytr = _read_split(root / "train")
    xte, yte = _read_split(root / "test")
    try:
        _atomic_save_npz(cache, xtr=xtr, ytr=ytr, xte=xte, yte=yte)
    except OSError:
        pass  # a read-only cache folder only costs speed
    return CIFAR10(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte),
                   source=source, location=str(root))


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
            ``settings().data_dir``). When it is ``None``, the data set is downloaded.
        download: allow the download (off: raise ``DataNotFoundError`` instead).
        cache_dir: where downloads and decoded-image caches go; default ``~/.cache/vgg-from-scratch``.
    Returns:
        A ``CIFAR10`` with uint8 images (N, 3, 32, 32) and int64 labels.
    Raises:
        DataNotFoundError: no data, no network, a corrupt image, or a missing/extra class folder; the message
            says which file or folder and what to do.
    """
    cache = Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR
    data_dir = data_dir or None
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DataNotFoundError(f"The data folder {root} does not exist. {_help_text(cache)}")
        if root.name == "cifar-10-batches-py":
            return _read_batches(root)
        if (root / "cifar-10-batches-py").is_dir():
            return _read_batches(root / "cifar-10-batches-py")
        if (root / "train").is_dir() or (root / "test").is_dir():
            return _read_image_folder(root, cache)
        raise DataNotFoundError(f"{root} holds neither 'cifar-10-batches-py/' nor 'train/' and 'test/' folders. "
                                f"{_help_text(cache)}")
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
    """
    if not 0 <= val_size < num_train:
        raise ValueError(f"val_size must be between 0 and {num_train - 1}; got {val_size}")
    perm = torch.randperm(num_train, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def random_subset(indices: torch.Tensor, size: Optional[int], seed: int = 0) -> torch.Tensor:
    """A seeded random subset of ``indices``, in ascending order.

    Never take the first ``size`` images instead: the image-folder copy is sorted by class, so they would all
    be airplanes.

    Args:
        indices: the indices to choose from (e.g. the training half of ``split_train_val``).
        size: how many to keep; ``None`` (or at least ``len(indices)``) keeps them all.
        seed: seed of the choice.
    Returns:
        The chosen indices.
    """
    if size is None or size >= len(indices):
        return indices
    perm = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))
    return indices[perm[:size]].sort().values


class TensorLoader:
    """Batches from uint8 tensors held in memory, with augmentation done on whole batches in torch.

    Much faster than a PIL-per-image ``DataLoader`` on a small CPU: no decoding, no worker processes.
    The order and the augmentation of epoch ``e`` depend only on ``(seed, e)``, so a resumed run sees exactly
    the batches an uninterrupted run would.

    Args:
        images: uint8 tensor (N, 3, H, W).
        labels: int64 tensor (N,).
        batch_size: images per batch.
        shuffle: reshuffle every epoch.
        augment: random crop (pad 4, as in the ResNet paper's CIFAR setup) and horizontal flip.
        seed: base seed for order and augmentation.
        device: where batches are put (``"cuda"`` moves everything there once).
        drop_last: drop the last incomplete batch (keeps batch-norm statistics stable when training).
        channels_last: return batches in ``torch.channels_last`` memory format.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128, shuffle: bool = False,
                 augment: bool = False, seed: int = 0, device: str | torch.device = "cpu", drop_last: bool = False,
                 channels_last: bool = False) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a uint8 tensor (N, 3, H, W); got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.shuffle, self.augment, self.seed = batch_size, shuffle, augment, seed
        self.drop_last, self.channels_last = drop_last, channels_last
        self.epoch = 0
        self.mean = torch.tensor(CIFAR10_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(CIFAR10_STD, device=self.device).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def dataset_size(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's order and augmentation the next iteration produces."""
        self.epoch = epoch

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float32, normalised per channel with the CIFAR-10 mean and std."""
        return (x.float() - self.mean) / self.std

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        flip = torch.rand(n, generator=gen, device="cpu") < 0.5
        x = torch.where(flip.to(x.device).view(n, 1, 1, 1), x.flip(3), x)
        padded = torch.nn.functional.pad(x, (4, 4, 4, 4))               # (N, 3, H+8, W+8), zero padding
        dx = torch.randint(0, 9, (n,), generator=gen).to(x.device)
        dy = torch.randint(0, 9, (n,), generator=gen).to(x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, 3, h, w + 8)
        x = padded.gather(2, rows)                                       # (N, 3, H, W+8)
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, 3, h, w)
        return x.gather(3, cols)                                         # (N, 3, H, W)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.images)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:
                x = self._augment(x, gen)
            x = self.normalize(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


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
                 loader_seed: Optional[int] = None) -> Loaders:
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
    Returns:
        A ``Loaders``.
    """
    train_idx, val_idx = split_train_val(len(data.train_labels), run.val_size, seed=seed)
    train_idx = random_subset(train_idx, run.train_size, seed)
    test_idx = random_subset(torch.arange(len(data.test_labels)), run.test_size, seed)
    common = dict(device=device, channels_last=channels_last)
    train = TensorLoader(data.train_images[train_idx], data.train_labels[train_idx], run.batch_size, shuffle=True,
                         augment=augment, seed=seed if loader_seed is None else loader_seed, drop_last=True,
                         **common)
    val = (TensorLoader(data.train_images[val_idx], data.train_labels[val_idx], eval_batch_size, **common)
           if len(val_idx) else None)
    test = TensorLoader(data.test_images[test_idx], data.test_labels[test_idx], eval_batch_size, **common)
    return Loaders(train, val, test, train_idx, val_idx, test_idx)

