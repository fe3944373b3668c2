"""Torch modules shaped for ONNX export; each wraps a loaded model and shares its weights.

The GPT becomes two graphs with the KV cache as explicit inputs and outputs,
both running the model's own prefill and step (`Text2SemanticModel`) with a
`KVStore` of their own:

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

import torch
from torch import nn

from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.models.sovits import SoVITSModel
from agent_tts.models.speaker_verification import ERes2NetV2
from agent_tts.models.t2s import Text2SemanticModel


def cache_names(num_layers: int, prefix: str) -> list[str]:
    """``{prefix}_key_{i}``, ``{prefix}_value_{i}`` for every layer, keys and values interleaved."""
    return [f"{prefix}_{kind}_{index}" for index in range(num_layers) for kind in ("key", "value")]


def _position_major(heads: torch.Tensor) -> torch.Tensor:
    """[1, H, T, head_dim] -> [1, T, H * head_dim], the layout of the runtime's cache buffers."""
    return heads.transpose(1, 2).flatten(2)


def _head_major(positions: torch.Tensor, heads: int) -> torch.Tensor:
    """[1, T, D] -> [1, H, T, D / H]."""
    return positions.unflatten(2, (heads, -1)).transpose(1, 2)


class _PrefillStore:
    """The prefill graph's `KVStore`: the pass's own keys are the whole cache, and each layer's are outputs."""

    def __init__(self, positions: torch.Tensor) -> None:
        self.positions = positions
        self.present: list[torch.Tensor] = []

    def key_slots(self) -> torch.Tensor:
        return self.positions

    def update(self, layer: int, slots: torch.Tensor, keys: torch.Tensor,
               values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.present += [_position_major(keys), _position_major(values)]
        return keys, values


class _StepStore:
    """The step graph's `KVStore`: the past comes in per layer, this position's keys and values go out."""

    def __init__(self, past: tuple[torch.Tensor, ...], heads: int) -> None:
        self.past = past
        self.heads = heads
        self.new: list[torch.Tensor] = []

    def key_slots(self) -> torch.Tensor:
        return torch.arange(self.past[0].shape[1] + 1, device=self.past[0].device)

    def update(self, layer: int, slots: torch.Tensor, keys: torch.Tensor,
               values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.new += [_position_major(keys), _position_major(values)]
        past_keys, past_values = self.past[2 * layer], self.past[2 * layer + 1]
        return (torch.cat([_head_major(past_keys, self.heads), keys], dim=2),
                torch.cat([_head_major(past_values, self.heads), values], dim=2))


class GPTPrefillGraph(nn.Module):
    """Text + prompt from an empty cache: (logits [1, V], then key, value [1, T, D] per layer)."""

    def __init__(self, gpt: Text2SemanticModel) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        store = _PrefillStore(torch.arange(phone_ids.shape[1] + prompt.shape[1], device=prompt.device))
        logits = self.gpt.prefill(phone_ids, bert, prompt, store)
        return (logits, *store.present)


class GPTStepGraph(nn.Module):
    """One token at ``position`` given the cache so far: (logits [1, V], then key, value [1, 1, D] per layer)."""

    def __init__(self, gpt: Text2SemanticModel) -> None:
        super().__init__()
        self.gpt = gpt

    def forward(self, token: torch.Tensor, position: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        store = _StepStore(past, self.gpt.config.num_heads)
        slot = torch.zeros_like(position) + past[0].shape[1]
        logits = self.gpt.step(token, position, slot, store)
        return (logits, *store.new)


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
    """Token ids, attention mask, token types [1, n] -> the hidden state GPT-SoVITS reads [1, n, hidden] (upstream's
    ``hidden_states[-3]``: the last state of the extractor's cut encoder)."""

    def __init__(self, bert: BertFeatureExtractor) -> None:
        super().__init__()
        self.model = bert.model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
