"""Kaldi-compatible log mel filterbank features: the speaker-verification model's front end.

What upstream's ``eres2net/kaldi.fbank(wav, num_mel_bins=80, sample_frequency=16000,
dither=0)`` computes, with Kaldi's defaults for everything else: 25 ms frames
every 10 ms that fit entirely in the signal, per-frame DC removal,
pre-emphasis 0.97 (the first sample against itself), the Povey window
(Hann to the power 0.85), zero-padding to 512 points, the power spectrum,
triangular mel bands from 20 Hz to Nyquist on Kaldi's ``1127 ln(1 + f/700)``
scale, and the natural log floored at float32 epsilon. The waveform is the
float signal in [-1, 1] (no int16 scaling) and no mean is subtracted: that
is the input the GPT-SoVITS models were trained with.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch.nn import functional as F

SAMPLE_RATE = 16000
MEL_BINS = 80
FRAME_SAMPLES = 400   # 25 ms
SHIFT_SAMPLES = 160   # 10 ms
FFT_SIZE = 512        # the frame rounded up to a power of two
PREEMPHASIS = 0.97
POVEY_POWER = 0.85
LOW_HZ = 20.0
EPSILON = torch.finfo(torch.float32).eps


def _mel(hz: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(hz, torch.Tensor):
        return 1127.0 * (1.0 + hz / 700.0).log()
    return 1127.0 * math.log(1.0 + hz / 700.0)


@lru_cache(maxsize=2)
def mel_banks(bins: int = MEL_BINS, fft_size: int = FFT_SIZE, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Triangular filters [bins, fft_size // 2 + 1] (the Nyquist column is zero, as in Kaldi)."""
    low, high = _mel(LOW_HZ), _mel(sample_rate / 2)
    delta = (high - low) / (bins + 1)
    index = torch.arange(bins).unsqueeze(1)
    left, center, right = (low + (index + k) * delta for k in (0.0, 1.0, 2.0))
    mel = _mel(sample_rate / fft_size * torch.arange(fft_size // 2)).unsqueeze(0)
    rising = (mel - left) / (center - left)
    falling = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return F.pad(banks, (0, 1))


def povey_window() -> torch.Tensor:
    return torch.hann_window(FRAME_SAMPLES, periodic=False, dtype=torch.float32).pow(POVEY_POWER)


def kaldi_fbank(waveform: torch.Tensor) -> torch.Tensor:
    """A 16 kHz waveform [samples] in [-1, 1] -> log mel energies [frames, 80], frames = 1 + (n - 400) // 160."""
    waveform = waveform.reshape(-1).to(torch.float32)
    if waveform.numel() < FRAME_SAMPLES:
        raise ValueError(f"{waveform.numel()} samples: the filterbank needs at least {FRAME_SAMPLES} (25 ms)")
    frames = waveform.unfold(0, FRAME_SAMPLES, SHIFT_SAMPLES)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = (frames - PREEMPHASIS * previous) * povey_window().to(frames.device)
    frames = F.pad(frames, (0, FFT_SIZE - FRAME_SAMPLES))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    energies = torch.mm(power, mel_banks().to(power.device).T)
    return torch.clamp(energies, min=EPSILON).log()
