"""CIFAR-10 loading (offline folders, download path, clear errors), the split, and the tensor loader."""
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vgg_helpers import data as data_mod
from vgg_helpers.data import (CIFAR10, CIFAR10_CLASSES, DataNotFoundError, RunBudget, TensorLoader, load_cifar10,
                              make_loaders, split_train_val)
from vgg_helpers.settings import settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg"


def make_image_folder(root: Path, per_class: int = 2, classes=CIFAR10_CLASSES) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, cls in enumerate(classes):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                arr = np.full((32, 32, 3), label * 20, dtype=np.uint8) + rng.integers(0, 5, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i:04d}.png")
    return root


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def test_image_folder_layout(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar")
    d = load_cifar10(root, cache_dir=cache)
    assert d.train_images.shape == (20, 3, 32, 32) and d.train_images.dtype == torch.uint8
    assert d.test_labels.tolist() == [i for i in range(10) for _ in range(2)]
    assert int(d.train_images[2, 0, 0, 0]) // 20 == 1      # class 1 images are filled with ~20
    assert "image folder" in d.source
    again = load_cifar10(root, cache_dir=cache)              # second load comes from the cache
    assert list(cache.glob("*.npz")) and torch.equal(again.train_images, d.train_images)


def test_environment_variable_names_the_folder(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    d = load_cifar10(settings({"VGG_DATA_DIR": str(root)}).data_dir, cache_dir=cache)
    assert len(d.train_labels) == 10
    assert d.location == str(root) and str(tmp_path) not in d.source      # printed text holds no paths


def test_python_batches_layout(tmp_path, cache):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    d = load_cifar10(tmp_path, cache_dir=cache)
    assert d.train_images.shape == (20, 3, 32, 32) and d.test_images.shape == (4, 3, 32, 32)
    assert d.train_labels.tolist() == [0, 1, 2, 3] * 5
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="data_batch_3"):
        load_cifar10(folder, cache_dir=cache)


def test_corrupt_image_is_named(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    bad = root / "train" / "cat" / "0000.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataNotFoundError, match=r"cat/0000\.png"):
        load_cifar10(root, cache_dir=cache)


def test_wrong_image_size_is_named(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    Image.new("RGB", (64, 64)).save(root / "test" / "dog" / "0000.png")
    with pytest.raises(DataNotFoundError, match=r"dog/0000\.png is 64x64"):
        load_cifar10(root, cache_dir=cache)


def test_missing_class_folder_is_named(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1, classes=CIFAR10_CLASSES[:-1])
    with pytest.raises(DataNotFoundError, match="missing: truck"):
        load_cifar10(root, cache_dir=cache)


def test_extra_class_folder_is_named(tmp_path, cache):
    root = make_image_folder(tmp_path / "cifar", per_class=1)
    (root / "train" / "unicorn").mkdir()
    with pytest.raises(DataNotFoundError, match="unexpected: unicorn"):
        load_cifar10(root, cache_dir=cache)


def test_folder_without_data_says_what_to_do(tmp_path, cache):
    with pytest.raises(DataNotFoundError, match="VGG_DATA_DIR"):
        load_cifar10(tmp_path, cache_dir=cache)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nope", cache_dir=cache)


def test_no_data_and_no_network_gives_a_clear_error(tmp_path, monkeypatch):

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("torchvision.datasets.CIFAR10", offline)
    with pytest.raises(DataNotFoundError) as e:
        load_cifar10(cache_dir=tmp_path)
    msg = str(e.value)
    assert "VGG_DATA_DIR" in msg and "cifar-10-batches-py" in msg and "train/<class>" in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__   # no urllib traceback chained
    with pytest.raises(DataNotFoundError, match="download=False"):
        load_cifar10(cache_dir=tmp_path, download=False)


def test_download_path_uses_torchvision_with_checksums(tmp_path, monkeypatch):
    calls = []

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            n = 6 if train else 3
            self.data = np.zeros((n, 32, 32, 3), dtype=np.uint8)
            self.targets = list(range(n))

    monkeypatch.setattr("torchvision.datasets.CIFAR10", FakeCIFAR10)
    d = load_cifar10(cache_dir=tmp_path)
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    assert d.train_images.shape == (6, 3, 32, 32) and d.test_labels.tolist() == [0, 1, 2]


@pytest.mark.skipif(not SHARED.is_dir(), reason="offline CIFAR-10 copy not present")
def test_offline_copy_is_the_standard_split():
    d = load_cifar10(SHARED)
    assert d.train_images.shape == (50000, 3, 32, 32) and d.test_images.shape == (10000, 3, 32, 32)
    assert d.train_labels.bincount().tolist() == [5000] * 10
    assert d.test_labels.bincount().tolist() == [1000] * 10
    assert "JPEG" in d.source and "/" not in d.source


def test_split_is_seeded_disjoint_and_complete():
    tr, va = split_train_val(1000, val_size=100, seed=3)
    assert len(va) == 100 and len(tr) == 900
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(1000))
    tr2, va2 = split_train_val(1000, val_size=100, seed=3)
    assert torch.equal(va, va2)
    assert not torch.equal(va, split_train_val(1000, val_size=100, seed=4)[1])
    with pytest.raises(ValueError, match="val_size"):
        split_train_val(10, val_size=10)


def _toy(n=10):
    images = torch.arange(n * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).view(n, 3, 32, 32)
    return images, torch.arange(n)


def test_loader_batches_and_normalises():
    images, labels = _toy(10)
    loader = TensorLoader(images, labels, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.dtype == torch.float32 and y.tolist() == [0, 1, 2, 3]
    expected = (images[:4].float() / 255 - torch.tensor(data_mod.CIFAR10_MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(data_mod.CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected)
    assert len(TensorLoader(images, labels, batch_size=4, drop_last=True)) == 2


def test_augmentation_is_a_crop_or_flip_and_repeats_per_epoch():
    images, labels = _toy(8)
    loader = TensorLoader(images, labels, batch_size=8, shuffle=True, augment=True, seed=1)
    loader.set_epoch(5)
    x1, y1 = next(iter(loader))
    loader.set_epoch(5)
    x2, y2 = next(iter(loader))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    loader.set_epoch(6)
    x3, _ = next(iter(loader))
    assert not torch.equal(x1, x3)
    # every augmented image is a shifted (and maybe mirrored) window of its zero-padded original
    plain = TensorLoader(images, labels, batch_size=8)
    originals = dict(zip(labels.tolist(), next(iter(plain))[0]))
    pad_value = (0 - torch.tensor(data_mod.CIFAR10_MEAN) * 255) / (torch.tensor(data_mod.CIFAR10_STD) * 255)
    for img, label in zip(x1, y1.tolist()):
        ok = False
        for src in (originals[label], originals[label].flip(2)):
            padded = pad_value.view(3, 1, 1).expand(3, 40, 40).clone()
            padded[:, 4:36, 4:36] = src
            ok |= any(torch.allclose(padded[:, dy:dy + 32, dx:dx + 32], img) for dy in range(9) for dx in range(9))
        assert ok


def test_process_shares_make_up_each_global_batch_with_the_same_augmentation():
    # data parallelism: 3 processes walk the same global batches; each takes its slice, augmented as one process
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.arange(50) % 10
    kw = dict(batch_size=12, shuffle=True, augment=True, seed=4, drop_last=True)
    whole = TensorLoader(images, labels, **kw)
    shares = [TensorLoader(images, labels, rank=r, world_size=3, **kw) for r in range(3)]
    assert len(whole) == 4 and all(len(s) == 4 for s in shares) and shares[2].dataset_size == 50
    for epoch in (0, 3):
        for loader in (whole, *shares):
            loader.set_epoch(epoch)
        for (x, y), *parts in zip(whole, *shares):
            assert [len(py) for _, py in parts] == [4, 4, 4]
            assert torch.equal(torch.cat([px for px, _ in parts]), x)
            assert torch.equal(torch.cat([py for _, py in parts]), y)
    # evaluation batches need not divide: the shares are as even as they can be
    ev = [TensorLoader(images, labels, batch_size=50, rank=r, world_size=3) for r in range(3)]
    assert [len(next(iter(e))[1]) for e in ev] == [16, 17, 17]


def test_make_loaders_gives_each_process_its_share():
    from tests.helpers import tiny_cifar

    data = tiny_cifar(300, 100)
    run = RunBudget(train_size=128, val_size=40, epochs=1, batch_size=32, test_size=100)
    whole = make_loaders(data, run, seed=1, augment=True)
    mine = make_loaders(data, run, seed=1, augment=True, rank=1, world_size=2)
    (x, y), (xm, ym) = next(iter(whole.train)), next(iter(mine.train))
    assert torch.equal(xm, x[16:]) and torch.equal(ym, y[16:])
    assert torch.equal(mine.train_idx, whole.train_idx) and mine.test.world_size == 2


def test_loader_rejects_bad_input():
    images, labels = _toy(4)
    with pytest.raises(ValueError, match="uint8"):
        TensorLoader(images.float(), labels)
    with pytest.raises(ValueError, match="labels"):
        TensorLoader(images, labels[:3])


def test_random_subset_is_seeded_sorted_and_not_the_first_images():
    from vgg_helpers.data import random_subset

    labels = torch.arange(1000) // 100              # class-sorted, like the image-folder copy
    idx = random_subset(torch.arange(1000), 50, seed=1)
    assert len(idx) == 50 and torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == 50
    assert torch.equal(idx, random_subset(torch.arange(1000), 50, seed=1))
    assert not torch.equal(idx, random_subset(torch.arange(1000), 50, seed=2))
    assert len(labels[idx].unique()) > 5             # spread over classes, unlike the first 50 images
    everything = torch.arange(10)
    assert random_subset(everything, None) is everything and random_subset(everything, 99) is everything


def test_make_loaders_splits_subsets_and_batches():
    from tests.helpers import tiny_cifar

    data = tiny_cifar(300, 100)
    run = RunBudget(train_size=100, val_size=50, epochs=1, batch_size=32, test_size=40)
    a = make_loaders(data, run, seed=3, augment=True)
    assert (len(a.train_idx), len(a.val_idx), len(a.test_idx)) == (100, 50, 40)
    assert not set(a.train_idx.tolist()) & set(a.val_idx.tolist())
    assert a.train_idx.tolist() == sorted(a.train_idx.tolist())            # one rule: ascending subsets
    assert len(a.train) == 3 and a.train.augment and a.train.seed == 3    # drop_last: 100 // 32
    assert a.val.batch_size == a.test.batch_size == 500 and not a.val.augment
    b = make_loaders(data, run, seed=3)
    assert torch.equal(a.train_idx, b.train_idx) and torch.equal(a.test_idx, b.test_idx)
    whole = make_loaders(data, RunBudget(train_size=None, val_size=0, epochs=1, batch_size=32))
    assert whole.val is None and len(whole.train_idx) == 300 and len(whole.test_idx) == 100


def test_a_batch_transform_runs_on_the_uint8_batch_before_normalisation():
    from vgg_helpers.paper import ScaleJitter

    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(10)
    seen = []

    def blank(x):
        seen.append(x.dtype)
        return torch.zeros_like(x)

    loader = TensorLoader(images, labels, batch_size=4, transform=blank)
    for x, _ in loader:
        assert torch.allclose(x, loader.normalize(torch.zeros(len(x), 3, 32, 32, dtype=torch.uint8)))
    assert seen == [torch.uint8] * 3
    jittered = TensorLoader(images, labels, batch_size=10, transform=ScaleJitter(32, 64, crop=32, seed=0))
    plain = TensorLoader(images, labels, batch_size=10)
    (a, _), (b, _) = next(iter(jittered)), next(iter(plain))
    assert a.shape == b.shape and not torch.equal(a, b)
    data = CIFAR10(images, labels, images[:4], labels[:4], source="test")
    loaders = make_loaders(data, RunBudget(train_size=None, val_size=2, epochs=1, batch_size=4), transform=blank)
    assert loaders.train.transform is blank and loaders.val.transform is None and loaders.test.transform is None


def test_a_bad_transform_is_refused_with_what_it_must_return():
    images, labels = torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.arange(4)
    with pytest.raises(TypeError, match="transform must be a function"):
        TensorLoader(images, labels, transform="flip")
    loader = TensorLoader(images, labels, batch_size=2, transform=lambda x: x.float())
    with pytest.raises(ValueError, match="must return a uint8 batch"):
        next(iter(loader))
