"""The compute device a voice runs on, from what a user types: auto, cpu, cuda or cuda:N."""

from __future__ import annotations

import torch

from agent_tts.errors import OptionError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def compute_device(value: str | torch.device | None = "auto") -> torch.device:
    """`auto` (or None): CUDA when torch sees a GPU, else the CPU; `cuda[:N]` must exist; one-line errors."""
    if isinstance(value, torch.device):
        return value
    text = (value or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise OptionError(f"device must be {DEVICE_CHOICES}, got {value!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"device {value!r}: torch sees no CUDA device (torch {torch.__version__}); "
                              "use --device cpu, or install torch with CUDA")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise OptionError(f"device {value!r}: there are {torch.cuda.device_count()} CUDA devices "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    elif device.type != "cpu":
        raise OptionError(f"device must be {DEVICE_CHOICES}, got {value!r}")
    return device
