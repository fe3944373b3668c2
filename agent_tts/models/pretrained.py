"""Thin wrappers over the two pretrained ``transformers`` folders GPT-SoVITS uses.

``chinese-hubert-base`` turns a 16 kHz waveform into SSL features for prompt
codes; ``chinese-roberta-wwm-ext-large`` gives phone-level BERT features for
Chinese text. Both load from disk only, never from a hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from agent_tts.errors import CheckpointError


def _require_folder(path: str | Path, what: str) -> Path:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{folder}: not a {what} folder (no config.json); "
            "point to the pretrained folder GPT-SoVITS ships, or run `agent-tts download`"
        )
    return folder


def _load_pretrained(model_class, folder: Path, what: str):
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        # The folders store fp16; the reference computes in float32.
        return model_class.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{folder}: cannot load the {what} weights ({first_line})") from exc


class HubertFeatureExtractor(nn.Module):
    """16 kHz waveform [B, samples] -> HuBERT last hidden state [B, 768, frames] (50 Hz)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @classmethod
    def from_folder(cls, path: str | Path) -> "HubertFeatureExtractor":
        from transformers import HubertModel

        folder = _require_folder(path, "chinese-hubert-base")
        return cls(_load_pretrained(HubertModel, folder, "HuBERT").eval())

    def forward(self, wav16k: torch.Tensor) -> torch.Tensor:
        return self.model(wav16k).last_hidden_state.transpose(1, 2)


UNUSED_TOP_BERT_LAYERS = 2
"""GPT-SoVITS reads BERT's ``hidden_states[-3]``, the output of all layers but the last two: those two and the
masked-LM head are dropped at load (at real size about 13% of BERT's time and 105 MB of fp32 weights)."""


class BertFeatureExtractor(nn.Module):
    """Chinese text -> phone-level BERT features [1024, n_phones] (upstream's ``hidden_states[-3]``).

    `model` is the encoder of the official masked-LM checkpoint without its last `UNUSED_TOP_BERT_LAYERS` layers
    and without the masked-LM head, so its last hidden state is the layer GPT-SoVITS reads.
    """

    def __init__(self, model: nn.Module, tokenizer) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def from_folder(cls, path: str | Path) -> "BertFeatureExtractor":
        from transformers import AutoTokenizer, BertForMaskedLM

        folder = _require_folder(path, "chinese-roberta-wwm-ext-large")
        encoder = without_unused_layers(_load_pretrained(BertForMaskedLM, folder, "BERT").bert, folder)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{folder}: cannot load the BERT tokenizer ({exc})") from exc
        return cls(encoder.eval(), tokenizer)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def forward(self, text: str, word2ph: Sequence[int]) -> torch.Tensor:
        if len(word2ph) != len(text):
            raise ValueError(f"word2ph has {len(word2ph)} entries for {len(text)} characters")
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in self.tokenizer(text, return_tensors="pt").items()}
        hidden = self.model(**inputs).last_hidden_state[0, 1:-1]
        return per_phone_features(hidden, text, word2ph)


def without_unused_layers(encoder: nn.Module, folder: Path) -> nn.Module:
    """A ``BertModel`` cut to the layers whose output GPT-SoVITS reads (its config says how many remain)."""
    layers = encoder.encoder.layer
    if len(layers) < UNUSED_TOP_BERT_LAYERS:
        raise CheckpointError(f"{folder}: BERT has {len(layers)} layers; GPT-SoVITS reads the output of the "
                              f"third-to-last, so it needs at least {UNUSED_TOP_BERT_LAYERS}")
    encoder.encoder.layer = layers[:len(layers) - UNUSED_TOP_BERT_LAYERS]
    encoder.config.num_hidden_layers = len(encoder.encoder.layer)
    return encoder


def per_phone_features(hidden: torch.Tensor, text: str, word2ph: Sequence[int]) -> torch.Tensor:
    """One BERT vector per character [len(text), hidden] -> each repeated for its phones: [hidden, n_phones]."""
    if hidden.shape[0] != len(text):
        raise ValueError(
            f"the BERT tokenizer split {text!r} into {hidden.shape[0]} tokens, expected one per character"
        )
    repeats = torch.as_tensor(list(word2ph), device=hidden.device)
    return hidden.repeat_interleave(repeats, dim=0).T
