"""The linear magnitude spectrogram SoVITS takes as its reference input."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def linear_spectrogram(wav: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """wav [B, samples] -> magnitude [B, n_fft/2+1, frames].

    Reflect-padded by (n_fft - hop)/2 on both sides, Hann window, ``center=False``,
    ``sqrt(re^2 + im^2 + 1e-8)``: the framing the SoVITS reference encoder was trained on.
    """
    pad = (n_fft - hop_length) // 2
    wav = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win_length, dtype=wav.dtype, device=wav.device)
    spec = torch.stft(wav, n_fft, hop_length=hop_length, win_length=win_length, window=window,
                      center=False, normalized=False, onesided=True, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)
