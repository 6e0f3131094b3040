"""Training fast: how the training step is executed, without changing what it computes.

* ``SpeedSettings`` -- the four switches of the step: threads, memory layout, bfloat16 autocast, ``torch.compile``;
* ``FastModel`` -- wraps a network with those settings, so that the training loop (``training.train``) and the
  evaluation (``training.evaluate``) see a normal model.

What each switch buys on a given machine is measured, not assumed: ``bench/`` records it, and the book's plans
(``vgg_helpers.book.plans``) say which switches a run uses and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .checks import whole_number
from .runtime import autocast_dtype

__all__ = ["SpeedSettings", "FastModel"]


@dataclass(frozen=True)
class SpeedSettings:
    """How the training step is executed: how fast it runs, not what it computes (bfloat16 rounds, slightly)."""

    threads: Optional[int] = None    # torch.set_num_threads; None = one per usable core
    channels_last: bool = False      # NHWC memory layout for images and conv weights
    amp: bool = False                # bfloat16 autocast, on CUDA and on CPUs with native bfloat16 (else ignored)
    compile: bool = False            # torch.compile the network (gpu only: on 2 CPU cores it does not pay off)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threads", whole_number("threads", self.threads, 1, none_means="one per core"))


class FastModel(nn.Module):
    """Wrap a network with the speed settings; training and evaluation code see a normal model.

    Args:
        net: the network (e.g. from ``build_vgg``).
        channels_last: convert the network's weights and every input batch to ``torch.channels_last``.
        amp: run the forward pass under autocast in ``runtime.autocast_dtype(device)``: bfloat16 where it is
            native (a CPU with bfloat16 instructions, a GPU of compute capability 8.0 or more), float16 on an
            older GPU (``train`` then adds a gradient scaler), nothing where it would be emulated and slower.
            The logits are returned as float32, so the loss is computed in full precision.
        compile: ``torch.compile`` the network (pays off on a GPU for long runs; compiling takes minutes).
    """

    def __init__(self, net: nn.Module, channels_last: bool = False, amp: bool = False,
                 compile: bool = False) -> None:
        super().__init__()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = torch.compile(net) if compile else net
        self.channels_last, self.amp = channels_last, amp
        self._dtypes: dict[torch.device, Optional[torch.dtype]] = {}
        self.config = getattr(net, "config", None)   # train() records model.config in the history
        self.train(net.training)          # the wrapper starts in the network's mode (evaluate() restores it)

    @classmethod
    def with_settings(cls, net: nn.Module, speed: SpeedSettings) -> "FastModel":
        """``net`` wrapped with ``speed``'s layout, autocast and compile switches (threads are the caller's)."""
        return cls(net, channels_last=speed.channels_last, amp=speed.amp, compile=speed.compile)

    def amp_dtype(self, device: torch.device | str) -> Optional[torch.dtype]:
        """The autocast precision of the forward pass on ``device`` (``None``: float32 throughout).

        Args:
            device: where the inputs are.
        Returns:
            ``torch.bfloat16``, ``torch.float16`` (``train`` adds a gradient scaler) or ``None``.
        """
        device = torch.device(device)
        if device not in self._dtypes:
            self._dtypes[device] = autocast_dtype(device) if self.amp else None
        return self._dtypes[device]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = self.amp_dtype(x.device)
        with torch.autocast(device_type=x.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = self.net(x)
        return out.float()
