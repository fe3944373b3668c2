"""Band-limited sinc resampling with a Hann window, as ``torchaudio.transforms.Resample`` computes it.

Upstream resamples the reference clip this way (width 6 zero crossings,
rolloff 0.99) for the spectrogram when the clip is not at the model's rate,
and again to 16 kHz for the speaker-verification model; `librosa`'s soxr path
(`clip.load_clip`) serves HuBERT instead. The two differ by far more than the
tolerances, so each input is made the way upstream makes it.

The kernel is built in float64 and used in float32; one strided convolution
computes every output phase at once, and the output has
``ceil(length * new / orig)`` samples.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch.nn import functional as F

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


@lru_cache(maxsize=8)
def _kernel(orig: int, new: int) -> tuple[torch.Tensor, int]:
    """Filter taps [new, 1, taps] for rates already divided by their gcd, and the padding width."""
    cutoff = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    phases = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new
    t = ((phases + taps) * cutoff).clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return (sinc * window * (cutoff / orig)).to(torch.float32), width


def sinc_resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """``waveform`` [..., samples] at ``orig_rate`` -> [..., ceil(samples * new / orig)] at ``new_rate``."""
    if orig_rate == new_rate:
        return waveform
    gcd = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // gcd, new_rate // gcd
    kernel, width = _kernel(orig, new)
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1]).to(torch.float32)
    padded = F.pad(flat, (width, width + orig))
    out = F.conv1d(padded[:, None], kernel.to(flat.device), stride=orig)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    length = math.ceil(new * shape[-1] / orig)
    return out[..., :length].reshape(*shape[:-1], -1)
