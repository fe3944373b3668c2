"""SoVITS v2, v2Pro and v2ProPlus inference ("s2"): semantic codes + phones + speaker vector -> waveform.

Parameter names follow the official ``*.pth`` inference files, which carry no
posterior encoder (``enc_q``); none is built. Sizes come from the file's
``config["model"]``; the dims the reference code fixes (SSL 768, MRTE 512,
reference spectrogram bins, the SV embedding's 20480) are read from the
weights where they appear.

The speaker vector ``ge`` [B, gin, 1] conditions the flow and the generator.
v2 derives it from the reference spectrogram alone and gives the same vector
to the text encoder's MRTE. v2Pro and v2ProPlus add the speaker-verification
embedding of the clip (``sv_emb``, then a per-channel ``prelu``) and give the
MRTE ``ge_to512(ge)`` instead; v2ProPlus only widens the generator, which the
file's config describes. Callers hold the one ``ge``; the model derives the
MRTE's conditioning from it (:meth:`SoVITSModel.text_conditioning`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from agent_tts.models.attentions import Encoder, MultiHeadAttention
from agent_tts.models.flow import ResidualCouplingBlock
from agent_tts.models.generator import Generator
from agent_tts.models.quantizer import ResidualVectorQuantizer
from agent_tts.models.reference_encoder import MelStyleEncoder


@dataclass(frozen=True)
class SoVITSConfig:
    """Sizes of a SoVITS v2/v2Pro/v2ProPlus model, read from the checkpoint."""

    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    gin_channels: int
    sampling_rate: int
    filter_length: int
    hop_length: int
    win_length: int
    n_symbols: int = 732
    ref_spec_bins: int = 704
    ssl_dim: int = 768
    codebook_size: int = 1024
    n_codebooks: int = 1
    mrte_channels: int = 512
    mrte_heads: int = 4
    sv_dim: int = 0             # v2Pro/v2ProPlus: the speaker-verification embedding's width; 0 for v2
    version: str = "v2"         # the file's: v2, v2Pro or v2ProPlus

    @property
    def uses_speaker_verification(self) -> bool:
        """Whether ``ge`` needs the clip's speaker-verification embedding (v2Pro, v2ProPlus)."""
        return self.sv_dim > 0

    @classmethod
    def from_hparams(cls, model: dict, data: dict, version: str = "v2", **fixed_dims: int) -> "SoVITSConfig":
        """From ``config["model"]`` and ``config["data"]`` of an s2 file whose version the loader detected.

        ``fixed_dims`` are the sizes the file's config does not store (``n_symbols``,
        ``ref_spec_bins``, ``ssl_dim``, ``sv_dim``, ...), read from the weights by the loader.
        """
        return cls(
            inter_channels=int(model["inter_channels"]),
            hidden_channels=int(model["hidden_channels"]),
            filter_channels=int(model["filter_channels"]),
            n_heads=int(model["n_heads"]),
            n_layers=int(model["n_layers"]),
            kernel_size=int(model["kernel_size"]),
            resblock=str(model["resblock"]),
            resblock_kernel_sizes=tuple(int(k) for k in model["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(int(d) for d in ds) for ds in model["resblock_dilation_sizes"]),
            upsample_rates=tuple(int(r) for r in model["upsample_rates"]),
            upsample_initial_channel=int(model["upsample_initial_channel"]),
            upsample_kernel_sizes=tuple(int(k) for k in model["upsample_kernel_sizes"]),
            gin_channels=int(model["gin_channels"]),
            sampling_rate=int(data["sampling_rate"]),
            filter_length=int(data["filter_length"]),
            hop_length=int(data["hop_length"]),
            win_length=int(data["win_length"]),
            version=version,
            **fixed_dims,
        )

    @property
    def samples_per_frame(self) -> int:
        """Waveform samples per latent frame (two frames per 25 Hz semantic token)."""
        total = 1
        for rate in self.upsample_rates:
            total *= rate
        return total


class MRTE(nn.Module):
    """Multi-reference timbre encoder: content attends to text, plus the speaker vector."""

    def __init__(self, content_channels: int, hidden: int, n_heads: int) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden, hidden, n_heads)
        self.c_pre = nn.Conv1d(content_channels, hidden, 1)
        self.text_pre = nn.Conv1d(content_channels, hidden, 1)
        self.c_post = nn.Conv1d(hidden, content_channels, 1)

    def forward(self, ssl: torch.Tensor, ssl_mask: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)
        ssl = self.c_pre(ssl * ssl_mask)
        text = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl * ssl_mask, text * text_mask, attn_mask) + ssl + ge
        return self.c_post(x * ssl_mask)


class TextEncoder(nn.Module):
    """Semantic latents + phones + style -> prior mean/log-scale (``enc_p``)."""

    def __init__(self, config: SoVITSConfig) -> None:
        super().__init__()
        hidden, filt = config.hidden_channels, config.filter_channels
        heads, layers, kernel = config.n_heads, config.n_layers, config.kernel_size
        self.out_channels = config.inter_channels
        self.ssl_proj = nn.Conv1d(config.ssl_dim, hidden, 1)
        self.encoder_ssl = Encoder(hidden, filt, heads, layers // 2, kernel)
        self.encoder_text = Encoder(hidden, filt, heads, layers, kernel)
        self.text_embedding = nn.Embedding(config.n_symbols, hidden)
        self.mrte = MRTE(hidden, config.mrte_channels, config.mrte_heads)
        self.encoder2 = Encoder(hidden, filt, heads, layers // 2, kernel)
        self.proj = nn.Conv1d(hidden, config.inter_channels * 2, 1)

    def encode(self, y: torch.Tensor, text: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        """y [B, 768, T] latents at 50 Hz, text [B, N] phone ids, MRTE conditioning -> hidden [B, hidden, T]."""
        y_mask = torch.ones(y.shape[0], 1, y.shape[2], dtype=y.dtype, device=y.device)
        text_mask = torch.ones(text.shape[0], 1, text.shape[1], dtype=y.dtype, device=y.device)
        y = self.ssl_proj(y * y_mask) * y_mask
        y = self.encoder_ssl(y * y_mask, y_mask)
        text_h = self.encoder_text(self.text_embedding(text).transpose(1, 2) * text_mask, text_mask)
        y = self.mrte(y, y_mask, text_h, text_mask, ge)
        return self.encoder2(y * y_mask, y_mask)

    def project(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stretched hidden sequence -> (mean, log-scale, mask); every frame is valid."""
        mask = torch.ones(hidden.shape[0], 1, hidden.shape[2], dtype=hidden.dtype, device=hidden.device)
        mean, logs = torch.split(self.proj(hidden), self.out_channels, dim=1)
        return mean, logs, mask


class SoVITSModel(nn.Module):
    """SoVITS for inference: prompt codes from HuBERT features, the speaker vector, and decoding to audio."""

    def __init__(self, config: SoVITSConfig) -> None:
        super().__init__()
        self.config = config
        self.enc_p = TextEncoder(config)
        self.dec = Generator(
            config.inter_channels, config.resblock, config.resblock_kernel_sizes,
            config.resblock_dilation_sizes, config.upsample_rates, config.upsample_initial_channel,
            config.upsample_kernel_sizes, config.gin_channels,
        )
        self.flow = ResidualCouplingBlock(config.inter_channels, config.hidden_channels, 5, 1, 4, 4,
                                          config.gin_channels)
        self.ref_enc = MelStyleEncoder(config.ref_spec_bins, config.gin_channels)
        self.ssl_proj = nn.Conv1d(config.ssl_dim, config.ssl_dim, 2, stride=2)
        self.quantizer = ResidualVectorQuantizer(config.ssl_dim, config.codebook_size, config.n_codebooks)
        if config.uses_speaker_verification:
            self.sv_emb = nn.Linear(config.sv_dim, config.gin_channels)
            self.ge_to512 = nn.Linear(config.gin_channels, config.mrte_channels)
            self.prelu = nn.PReLU(config.gin_channels)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype decoding runs in (the weights'; see `agent_tts.models.precision`)."""
        return self.enc_p.proj.weight.dtype

    def extract_latent(self, ssl_features: torch.Tensor) -> torch.Tensor:
        """HuBERT features [B, 768, T] at 50 Hz -> semantic codes [B, n_q, T/2] at 25 Hz."""
        return self.quantizer.encode(self.ssl_proj(ssl_features)).transpose(0, 1)

    def reference_style(self, refer_spec: torch.Tensor) -> torch.Tensor:
        """Linear spectrogram [B, 1025, F] -> the reference encoder's style vector [B, gin, 1]."""
        mask = torch.ones(refer_spec.shape[0], 1, refer_spec.shape[2], dtype=refer_spec.dtype,
                          device=refer_spec.device)
        return self.ref_enc(refer_spec[:, : self.config.ref_spec_bins] * mask, mask)

    def speaker_embedding(self, refer_spec: torch.Tensor, sv_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """One reference's ``ge`` [B, gin, 1]: its style vector, for v2Pro plus its projected SV embedding [B, 20480]."""
        ge = self.reference_style(refer_spec)
        if not self.config.uses_speaker_verification:
            return ge
        if sv_embedding is None:
            raise ValueError("this SoVITS model (v2Pro/v2ProPlus) needs the reference's speaker-verification embedding")
        return self.prelu(ge + self.sv_emb(sv_embedding).unsqueeze(-1))

    def text_conditioning(self, ge: torch.Tensor) -> torch.Tensor:
        """What the text encoder's MRTE adds for speaker ``ge``: ``ge`` itself (v2) or ``ge_to512(ge)`` (v2Pro)."""
        if not self.config.uses_speaker_verification:
            return ge
        return self.ge_to512(ge.transpose(1, 2)).transpose(1, 2)

    def content(self, codes: torch.Tensor, text: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        """codes [B, n_q, T], phones [B, N], speaker vector -> the text encoder's hidden sequence [B, hidden, 2T]
        at 50 Hz, before any speed stretch."""
        latents = self.quantizer.decode(codes)
        # Each 25 Hz frame twice (nearest-neighbour upsampling), written so exported graphs keep T dynamic.
        latents = latents.unsqueeze(-1).expand(-1, -1, -1, 2).reshape(latents.shape[0], latents.shape[1], -1)
        return self.enc_p.encode(latents, text, self.text_conditioning(ge))

    def waveform(self, hidden: torch.Tensor, ge: torch.Tensor, noise_scale: float | torch.Tensor = 0.0,
                 generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """A (stretched) hidden sequence [B, hidden, F] -> prior, flow, generator -> waveform [B, 1, samples].

        Given ``noise`` is always scaled by ``noise_scale`` (a tensor in exported graphs); without it, noise is
        drawn only when ``noise_scale`` is not zero.
        """
        mean, logs, mask = self.enc_p.project(hidden)
        if noise is None and noise_scale:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        z_p = mean if noise is None else mean + noise[..., : mean.shape[-1]].to(mean) * torch.exp(logs) * noise_scale
        z = self.flow.reverse(z_p, mask, ge)
        return self.dec(z * mask, ge)

    def decode(self, codes: torch.Tensor, text: torch.Tensor, ge: torch.Tensor,
               noise_scale: float = 0.5, speed: float = 1.0,
               generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """codes [B, n_q, T], phones [B, N], speaker vector ``ge`` [B, gin, 1] -> waveform [B, 1, samples].

        ``noise`` [B, inter_channels, >= frames] replaces the random draw, so that
        overlapping windows of one utterance can share the same noise.
        """
        ge = ge.to(self.compute_dtype)
        hidden = self.content(codes, text, ge)
        if speed != 1:
            hidden = F.interpolate(hidden, size=int(hidden.shape[-1] / speed) + 1, mode="linear")
        return self.waveform(hidden, ge, noise_scale, generator, noise)
