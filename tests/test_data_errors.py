"""vgg_helpers.data under bad input: stale or damaged caches, odd folders, wrong types and sizes (issue 16)."""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import tiny_cifar
from tests.test_data import make_image_folder
from vgg_helpers.book.plans import BATCH_NORM
from vgg_helpers.data import (DataNotFoundError, RunBudget, TensorLoader, load_cifar10, make_loaders, random_subset,
                              split_train_val)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _images(n=4):
    return torch.zeros(n, 3, 32, 32, dtype=torch.uint8), torch.arange(n)


# ---- the decoded-image cache ----

def test_cache_notices_an_image_rewritten_in_place(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    before = load_cifar10(root, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    image = root / "train" / "cat" / "0000.png"
    folder_mtime = (root / "train" / "cat").stat().st_mtime_ns
    Image.fromarray(np.full((32, 32, 3), 7, dtype=np.uint8)).save(image)      # same name, same count
    later = image.stat().st_mtime_ns + 5_000_000_000
    os.utime(image, ns=(later, later))
    os.utime(root / "train" / "cat", ns=(folder_mtime, folder_mtime))           # the folder looks untouched
    after = load_cifar10(root, cache_dir=cache)
    cat = 3                                                                     # one image per class, in order
    assert int(before.train_images[cat, 0, 0, 0]) != 7 and (after.train_images[cat] == 7).all()
    assert torch.equal(after.train_images[:cat], before.train_images[:cat])
    assert len(list(cache.glob("*.npz"))) == 1                                  # the stale cache is gone


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong keys", "wrong shapes", "wrong labels"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, cache, damage):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    good = load_cifar10(root, cache_dir=cache)
    (path,) = cache.glob("*.npz")
    if damage == "garbage":
        path.write_bytes(b"this is not a zip file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "wrong keys":
        np.savez(path, images=np.zeros(3))
    else:
        xtr, ytr = good.train_images.numpy(), good.train_labels.numpy()
        if damage == "wrong shapes":
            xtr = xtr[:, :, :16]
        else:
            ytr = ytr[::-1].copy()
        np.savez(path, xtr=xtr, ytr=ytr, xte=good.test_images.numpy(), yte=good.test_labels.numpy())
    with pytest.warns(UserWarning, match=f"cache {path}.*rebuilding it"):
        again = load_cifar10(root, cache_dir=cache)
    assert torch.equal(again.train_images, good.train_images) and torch.equal(again.train_labels, good.train_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                         # rewritten: no warning any more
        assert torch.equal(load_cifar10(root, cache_dir=cache).test_images, good.test_images)
    assert [p.name for p in cache.iterdir()] == [path.name]                      # no temporary file left


# ---- image folders ----

@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_class_folder_is_named(tmp_path, cache, split):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    (root / split / "frog" / "0000.png").unlink()
    with pytest.raises(DataNotFoundError, match=rf"{split}/frog holds no images: every class folder .*\.jpg"):
        load_cifar10(root, cache_dir=cache)
    (root / split / "frog" / "0000.webp").write_bytes(b"x")
    with pytest.raises(DataNotFoundError, match=r"holds no images.*1 other file, e\.g\. 0000\.webp"):
        load_cifar10(root, cache_dir=cache)


def test_hidden_files_and_folders_are_skipped(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    (root / "train" / ".ipynb_checkpoints").mkdir()                  # Jupyter makes these
    (root / "train" / "cat" / "._0000.png").write_bytes(b"macOS resource fork")
    assert load_cifar10(root, cache_dir=cache).train_images.shape == (10, 3, 32, 32)


def test_data_dir_as_str_path_and_tilde(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for data_dir in (str(root), root, "~/cifar"):
        assert len(load_cifar10(data_dir, cache_dir="~/cache").train_labels) == 10
    assert list((tmp_path / "cache").glob("*.npz")) and not (tmp_path / "~").exists()   # ~ expanded in cache_dir


def test_data_dir_that_is_a_file(tmp_path, cache):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    with pytest.raises(DataNotFoundError, match=r"cifar-10-python\.tar\.gz is a file, not a folder.*tar xzf"):
        load_cifar10(archive, cache_dir=cache)
    with pytest.raises(DataNotFoundError, match=r"holds cifar-10-python\.tar\.gz.*unpack it"):
        load_cifar10(tmp_path, cache_dir=cache)


def test_data_dir_pointing_at_train_or_one_level_too_high(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    with pytest.raises(DataNotFoundError, match=rf"train holds the class folders itself.* \({root}\)"):
        load_cifar10(root / "train", cache_dir=cache)
    with pytest.raises(DataNotFoundError, match=rf"Did you mean {root}\?"):
        load_cifar10(tmp_path, cache_dir=cache)


def test_load_cifar10_rejects_wrong_types(tmp_path, cache):
    with pytest.raises(TypeError, match=r"data_dir must be a folder path .*; got 5 \(int\)"):
        load_cifar10(5, cache_dir=cache)
    with pytest.raises(TypeError, match=r"download must be True or False; got 'no' \(str\)"):
        load_cifar10(download="no", cache_dir=cache)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"cache_dir .*file is a file, not a folder"):
        load_cifar10(cache_dir=tmp_path / "file", download=False)


# ---- split_train_val, random_subset ----

def test_split_train_val_rejects_bad_sizes():
    with pytest.raises(TypeError, match=r"val_size must be a whole number >= 0; got 0\.1 \(float\)\. For a fraction"):
        split_train_val(1000, val_size=0.1)
    with pytest.raises(ValueError, match=r"val_size must be a whole number >= 0; got -5"):
        split_train_val(1000, val_size=-5)
    with pytest.raises(ValueError, match=r"val_size must be between 0 and 9 .*; got 10"):
        split_train_val(10, val_size=10)
    with pytest.raises(TypeError, match=r"num_train must be a whole number >= 1; got 100\.0 \(float\)"):
        split_train_val(100.0, val_size=10)
    with pytest.raises(TypeError, match=r"seed must be a whole number; got None"):
        split_train_val(100, val_size=10, seed=None)
    tr, va = split_train_val(np.int64(100), val_size=torch.tensor(10))       # numpy and 0-d tensor ints work
    assert (len(tr), len(va)) == (90, 10)


def test_random_subset_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"size must be a whole number >= 0 \(or None for all\); got -3"):
        random_subset(torch.arange(10), -3)
    with pytest.raises(TypeError, match=r"size must be .*; got 2\.5 \(float\)"):
        random_subset(torch.arange(10), 2.5)
    with pytest.raises(TypeError, match=r"indices must be integer indices.*float32"):
        random_subset(torch.arange(10.0), 3)
    assert len(random_subset(list(range(10)), 3)) == 3                      # a list or range works too


# ---- TensorLoader ----

@pytest.mark.parametrize("bad, error", [(2.5, TypeError), ("64", TypeError), (True, TypeError), (0, ValueError),
                                        (None, TypeError)])
def test_loader_batch_size_must_be_a_whole_number(bad, error):
    with pytest.raises(error, match=rf"batch_size must be a whole number >= 1; got {bad!r}"):
        TensorLoader(*_images(), batch_size=bad)


def test_loader_accepts_numpy_integers_and_converts_labels():
    images, labels = _images(6)
    loader = TensorLoader(images.numpy(), labels.to(torch.int32).numpy(), batch_size=np.int64(4))
    assert loader.batch_size == 4 and type(loader.batch_size) is int and len(loader) == 2
    assert next(iter(loader))[1].dtype == torch.int64                          # what cross_entropy needs


def test_loader_rejects_empty_images_and_bad_labels():
    images, labels = _images(4)
    with pytest.raises(ValueError, match="images is empty"):
        TensorLoader(images[:0], labels[:0])
    with pytest.raises(TypeError, match=r"labels must be integer class indices; got torch\.float32.*labels\.long"):
        TensorLoader(images, labels.float())
    with pytest.raises(ValueError, match=r"labels must be 1-D .*; got shape \(4, 10\).*argmax"):
        TensorLoader(images, torch.nn.functional.one_hot(labels, 10))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        TensorLoader(images, labels[:3])
    with pytest.raises(TypeError, match=r"labels must be a torch\.Tensor.*; got \[0, 1\] \(list\)"):
        TensorLoader(images, [0, 1])


def test_loader_image_layout_hints():
    images, labels = _images(4)
    with pytest.raises(ValueError, match=r"images must be uint8 .*got torch\.float32.*\* 255"):
        TensorLoader(images.float() / 255, labels)
    with pytest.raises(ValueError, match=r"\(4, 32, 32, 3\).*permute\(0, 3, 1, 2\)"):
        TensorLoader(images.permute(0, 2, 3, 1), labels)
    with pytest.raises(ValueError, match=r"\(4, 1, 32, 32\).*expand"):
        TensorLoader(images[:, :1], labels)
    with pytest.raises(ValueError, match=r"\(3, 32, 32\).*unsqueeze\(0\)"):
        TensorLoader(images[0], labels[:1])


def test_loader_drop_last_with_too_few_images():
    with pytest.raises(ValueError, match=r"drop_last=True with 4 images and batch_size=8 would give no batches"):
        TensorLoader(*_images(4), batch_size=8, drop_last=True)
    assert len(TensorLoader(*_images(4), batch_size=8)) == 1                   # without drop_last: one short batch


def test_loader_checks_the_process_share():
    with pytest.raises(ValueError, match=r"batch_size=10 is not divisible by world_size=4: .* e\.g\. 8"):
        TensorLoader(*_images(20), batch_size=10, drop_last=True, world_size=4)
    with pytest.raises(ValueError, match=r"rank must be .*below world_size=2"):
        TensorLoader(*_images(), rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"world_size must be a whole number >= 1; got 0"):
        TensorLoader(*_images(), world_size=0)
    assert len(TensorLoader(*_images(20), batch_size=10, world_size=4)) == 2   # evaluation: shares may differ


def test_loader_checks_seed_flags_device_and_epoch():
    with pytest.raises(TypeError, match=r"seed must be a whole number; got 1\.5 \(float\)"):
        TensorLoader(*_images(), seed=1.5)
    with pytest.raises(TypeError, match=r"shuffle must be True or False; got 'yes' \(str\)"):
        TensorLoader(*_images(), shuffle="yes")
    with pytest.raises(ValueError, match=r"device must be .*; got 'gpu'"):
        TensorLoader(*_images(), device="gpu")
    loader = TensorLoader(*_images(), shuffle=True, seed=-2**62)                # any int seed works
    assert len(list(loader)) == 1
    with pytest.raises(ValueError, match=r"epoch must be a whole number >= 0; got -1"):
        loader.set_epoch(-1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_loader_on_cuda_without_a_gpu():
    with pytest.raises(ValueError, match=r"device='cuda' but .*no usable CUDA GPU.*device='cpu'"):
        TensorLoader(*_images(), device="cuda")


# ---- make_loaders ----

def _unchecked_budget(**fields) -> RunBudget:
    """A RunBudget with any field values, past whatever checks RunBudget itself makes: make_loaders checks too."""
    run = object.__new__(RunBudget)
    for name, value in dict(dict(train_size=None, val_size=0, epochs=1, batch_size=32, test_size=None),
                            **fields).items():
        object.__setattr__(run, name, value)
    return run


def test_make_loaders_checks_the_budget():
    data = tiny_cifar(300, 100)
    with pytest.raises(ValueError, match=r"run\.val_size=300 leaves no training images.*300 training images"):
        make_loaders(data, RunBudget(train_size=None, val_size=300, epochs=1, batch_size=32))
    with pytest.raises(ValueError, match=r"Only 50 training images .*fewer than run\.batch_size=128"):
        make_loaders(data, RunBudget(train_size=None, val_size=250, epochs=1, batch_size=128))
    with pytest.raises(ValueError, match=r"run\.train_size must be a whole number >= 1 \(or None for all\); got -1"):
        make_loaders(data, _unchecked_budget(train_size=-1))
    with pytest.raises(TypeError, match=r"run\.test_size must be .*; got 0\.5 \(float\)"):
        make_loaders(data, _unchecked_budget(test_size=0.5))
    with pytest.raises(TypeError, match=r"run\.batch_size must be a whole number >= 1; got '32' \(str\)"):
        make_loaders(data, _unchecked_budget(batch_size="32"))
    with pytest.raises(TypeError, match=r"eval_batch_size must be a whole number >= 1; got '500'"):
        make_loaders(data, RunBudget(train_size=None, val_size=0, epochs=1, batch_size=32), eval_batch_size="500")
    with pytest.raises(TypeError, match=r"run must be a RunBudget.*got Plan.*plan\.run"):
        make_loaders(data, BATCH_NORM["smoke"])
    with pytest.raises(TypeError, match=r"data must be a CIFAR10.*got a Tensor of shape \(300, 3, 32, 32\)"):
        make_loaders(data.train_images, BATCH_NORM["smoke"].run)
    empty = tiny_cifar(300, 100)
    empty.test_images, empty.test_labels = empty.test_images[:0], empty.test_labels[:0]
    with pytest.raises(ValueError, match="data holds 300 training and 0 test images"):
        make_loaders(empty, BATCH_NORM["smoke"].run)
    # sizes above what the data holds keep everything there is (the smoke budgets run on tiny test data)
    loaders = make_loaders(data, RunBudget(train_size=5000, val_size=50, epochs=1, batch_size=32, test_size=5000))
    assert (len(loaders.train_idx), len(loaders.test_idx)) == (250, 100)


def test_loader_refuses_negative_labels_as_class_indices():
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"labels must be class indices 0 or more; got values from -1 to 2\."):
        TensorLoader(images, torch.tensor([-1, 0, 1, 2]))
