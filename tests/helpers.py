"""Small synthetic data shared by the tests (no files, seconds to train on)."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import torch
from torch import nn

from vgg_helpers import build_vgg
from vgg_helpers.data import CIFAR10, TensorLoader


def tiny_cifar(n_train: int = 300, n_test: int = 100) -> CIFAR10:
    """A learnable synthetic CIFAR-10: the class is the image's brightness band."""
    g = torch.Generator().manual_seed(0)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 10
        x = (y.view(n, 1, 1, 1) * 25 + torch.randint(0, 20, (n, 3, 32, 32), generator=g)).to(torch.uint8)
        return x, y

    return CIFAR10(*make(n_train), *make(n_test), source="synthetic test data")


def tiny_model(seed: int = 0) -> nn.Module:
    """A batch-norm VGG-11 at 1/8 width with the CIFAR head, seeded."""
    torch.manual_seed(seed)
    return build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, batch_norm=True, width=0.125)


def toy_loaders(n: int = 96, batch_size: int = 32) -> tuple[TensorLoader, TensorLoader]:
    """Training (shuffled, augmented) and evaluation loaders over ``tiny_cifar``-style images."""
    data = tiny_cifar(n, 10)
    train_loader = TensorLoader(data.train_images, data.train_labels, batch_size=batch_size, shuffle=True,
                                augment=True, seed=0)
    return train_loader, TensorLoader(data.train_images, data.train_labels, batch_size=64)


def leaves_the_random_state_alone(call) -> bool:
    """Whether ``call()`` leaves torch's global random generator where it found it (exercise checks must)."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    call()
    return torch.equal(torch.rand(3), expected)


# A decimal number in prose ("41.5%", "0.077"), not a section number or a version ("sec. 3.1", "torch 2.14").
DECIMAL = re.compile(r"(?<![\w.])(?<!sec\. )(?<!section )(?<!torch )(\d+\.\d+)(?![\w.]*\d)")


def unprinted_numbers(nb: nbformat.NotebookNode) -> list[str]:
    """Decimal numbers in the notebook's markdown (outside exercises) that none of its outputs contains."""
    printed = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            printed.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
    text = "\n".join(printed)
    missing = []
    for cell in nb.cells:
        if cell.cell_type != "markdown" or "admonition}" in cell.source:
            continue
        for number in DECIMAL.findall(cell.source.split("## Self-check")[0]):
            if number not in text:
                missing.append(number)
    return missing


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def solution_source(chapter: str, defines: str) -> str:
    """The source of ``chapter``'s solution cell that defines ``defines``, checked to be folded and followed by
    its check cell."""
    nb = nbformat.read(NOTEBOOKS / chapter, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
             and f"def {defines}(" in c.source]
    assert len(cells) == 1, f"{chapter}: expected one solution cell defining {defines}"
    assert "hide-cell" in cells[0].metadata["tags"]
    after = nb.cells[nb.cells.index(cells[0]) + 1]
    assert after.cell_type == "code" and "solution" not in after.metadata.get("tags", []), \
        f"{chapter}: the cell after the solution must be the check cell"
    assert "check_" in after.source and defines in after.source
    return cells[0].source
