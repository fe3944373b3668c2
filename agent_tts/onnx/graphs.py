"""Torch modules shaped for ONNX export; each wraps a loaded model and shares its weights.

The GPT becomes two graphs with the KV cache as explicit inputs and outputs:

* ``GPTPrefillGraph``: phones + BERT + semantic prompt -> last logits, and the
  keys/values of every position (``present_key_{i}`` / ``present_value_{i}``,
  [1, T, D] per layer);
* ``GPTStepGraph``: one token at one audio position plus the cache so far
  (``past_key_{i}`` / ``past_value_{i}``, [1, length, D]) -> logits and this
  position's keys/values (``new_key_{i}`` / ``new_value_{i}``, [1, 1, D]).

Per-layer, position-major cache tensors let the runtime hand ORT a prefix of a
preallocated buffer without a copy and have ORT write the new position into it
(see ``runtime.OnnxText2Semantic``). Everything shape-dependent is computed
from tensors, never from Python ints, so the graphs hold for every length.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.models.sovits import SoVITSModel
from agent_tts.models.speaker_verification import ERes2NetV2
from agent_tts.models.t2s import SinePositionalEmbedding, Text2SemanticModel, TransformerLayer


def sine_positions(positions: torch.Tensor, embedding: SinePositionalEmbedding) -> torch.Tensor:
    """The sin/cos rows for integer ``positions`` [T] -> [T, D], computed in the graph."""
    dim = embedding.dim
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    angles = positions.to(torch.float32).unsqueeze(1) * div_term.unsqueeze(0)
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(-1, dim)


def _attention(layer: TransformerLayer, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               allowed: torch.Tensor | None) -> torch.Tensor:
    """Post-norm layer output for queries ``x`` [1, Tq, D] over ``keys``/``values`` [1, Tk, D]."""
    heads = layer.num_heads
    batch, t_query, dim = x.shape
    head_dim = dim // heads
    q = F.linear(x, layer.self_attn.in_proj_weight[:dim], layer.self_attn.in_proj_bias[:dim])
    q = q.view(batch, -1, heads, head_dim).transpose(1, 2)
    k = keys.view(batch, -1, heads, head_dim).transpose(1, 2)
    v = values.view(batch, -1, heads, head_dim).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(head_dim))
    if allowed is not None:
        scores = scores.masked_fill(~allowed, -float("inf"))
    attn = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(batch, -1, dim)
    x = layer.norm1(x + layer.self_attn.out_proj(attn))
    return layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))


def _keys_values(layer: TransformerLayer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dim = x.shape[-1]
    weight, bias = layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias
    return F.linear(x, weight[dim:2 * dim], bias[dim:2 * dim]), F.linear(x, weight[2 * dim:], bias[2 * dim:])


def cache_names(num_layers: int, prefix: str) -> list[str]:
    """``{prefix}_key_{i}``, ``{prefix}_value_{i}`` for every layer, keys and values interleaved."""
    return [f"{prefix}_{kind}_{index}" for index in range(num_layers) for kind in ("key", "value")]


class GPTPrefillGraph(nn.Module):
    """Text + prompt from an empty cache: (logits [1, V], then key, value [1, T, D] per layer)."""

    def __init__(self, gpt: Text2SemanticModel) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gpt = self.gpt
        n_text = phone_ids.shape[1]
        text_positions = torch.arange(n_text, device=phone_ids.device)
        audio_positions = torch.arange(prompt.shape[1], device=prompt.device)
        text = gpt.ar_text_embedding(phone_ids) + gpt.bert_proj(bert.transpose(1, 2))
        text = text + gpt.ar_text_position.alpha * sine_positions(text_positions, gpt.ar_text_position)
        audio = gpt.ar_audio_embedding(prompt)
        audio = audio + gpt.ar_audio_position.alpha * sine_positions(audio_positions, gpt.ar_audio_position)
        x = torch.cat([text, audio], dim=1)
        rows = torch.arange(x.shape[1], device=x.device)
        # Text attends to text; the prompt to all text and causally to itself.
        allowed = (rows.unsqueeze(0) < n_text) | (rows.unsqueeze(0) <= rows.unsqueeze(1))
        cache: list[torch.Tensor] = []
        for layer in gpt.h.layers:
            keys, values = _keys_values(layer, x)
            cache += [keys, values]
            x = _attention(layer, x, keys, values, allowed)
        return (gpt.ar_predict_layer(x[:, -1]), *cache)


class GPTStepGraph(nn.Module):
    """One token at ``position`` given the cache so far: (logits [1, V], then key, value [1, 1, D] per layer)."""

    def __init__(self, gpt: Text2SemanticModel) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, token: torch.Tensor, position: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gpt = self.gpt
        x = gpt.ar_audio_embedding(token)
        x = x + gpt.ar_audio_position.alpha * sine_positions(position, gpt.ar_audio_position)
        new: list[torch.Tensor] = []
        for index, layer in enumerate(gpt.h.layers):
            key, value = _keys_values(layer, x)
            new += [key, value]
            keys = torch.cat([past[2 * index], key], dim=1)
            values = torch.cat([past[2 * index + 1], value], dim=1)
            x = _attention(layer, x, keys, values, None)
        return (gpt.ar_predict_layer(x[:, -1]), *new)


def stretch_linear(hidden: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Linear resampling of [B, C, T] to ``frames`` along time, as ``F.interpolate(mode="linear")`` does.

    Written with gathers so the output length can be a graph input;
    ``frames == T`` is the identity.
    """
    length = hidden.shape[-1]
    scale = torch.tensor(length, dtype=torch.float32) / frames.to(torch.float32)
    source = ((torch.arange(frames.reshape(()), dtype=torch.float32) + 0.5) * scale - 0.5).clamp(min=0)
    left = source.floor().to(torch.long).clamp(max=length - 1)
    right = (left + 1).clamp(max=length - 1)
    weight = source - left.to(torch.float32)
    return hidden.index_select(2, left) * (1 - weight) + hidden.index_select(2, right) * weight


class SoVITSDecoderGraph(nn.Module):
    """codes [1, 1, T], phones [1, N], ge, noise [1, C, >= frames], noise_scale [1], frames [1] -> wav [1, 1, S].

    ``ge`` [1, gin, 1] is the voice's speaker vector; for v2Pro the graph derives the MRTE's ``ge_to512`` from it.

    ``frames`` is the latent length after the speed stretch (2T at speed 1),
    computed by the caller exactly as the torch decoder does.
    """

    def __init__(self, sovits: SoVITSModel) -> None:
        super().__init__()
        self.sovits = sovits

    def forward(self, codes: torch.Tensor, phone_ids: torch.Tensor, ge: torch.Tensor, noise: torch.Tensor,
                noise_scale: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        hidden = stretch_linear(self.sovits.content(codes, phone_ids, ge), frames)
        return self.sovits.waveform(hidden, ge, noise_scale, noise=noise)


class PromptCodesGraph(nn.Module):
    """The reference clip at 16 kHz [1, samples] -> HuBERT -> SoVITS ``ssl_proj`` + VQ -> prompt codes [1, T]."""

    def __init__(self, hubert: HubertFeatureExtractor, sovits: SoVITSModel) -> None:
        super().__init__()
        self.hubert = hubert
        self.sovits = sovits

    def forward(self, wav16k: torch.Tensor) -> torch.Tensor:
        return self.sovits.extract_latent(self.hubert(wav16k))[0, :1]


class SpeakerEncoderGraph(nn.Module):
    """Linear spectrogram [1, bins, F] (v2Pro: and the SV embedding [1, 20480]) -> one clip's ``ge`` [1, gin, 1]."""

    def __init__(self, sovits: SoVITSModel) -> None:
        super().__init__()
        self.sovits = sovits

    def forward(self, spectrogram: torch.Tensor, *sv_embedding: torch.Tensor) -> torch.Tensor:
        return self.sovits.speaker_embedding(spectrogram, *sv_embedding)


class SpeakerVerificationGraph(nn.Module):
    """Kaldi filterbank frames [1, T, 80] -> the ERes2NetV2 embedding [1, 20480] (v2Pro and v2ProPlus voices)."""

    def __init__(self, model: ERes2NetV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        return self.model(fbank)


class BertGraph(nn.Module):
    """Token ids, attention mask, token types [1, n] -> the third-to-last hidden state [1, n, hidden]."""

    def __init__(self, bert: BertFeatureExtractor) -> None:
        super().__init__()
        self.model = bert.model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          output_hidden_states=True).hidden_states[-3]
