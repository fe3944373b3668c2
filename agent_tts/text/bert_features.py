"""Phone-level BERT features for the GPT: Chinese parts from the model, zeros elsewhere."""

from __future__ import annotations

import logging

import torch

from agent_tts.models.pretrained import BertFeatureExtractor
from agent_tts.text.phonemes import Phonemes

logger = logging.getLogger(__name__)
BERT_DIM = 1024


def phone_level_bert(bert: BertFeatureExtractor | None, phonemes: Phonemes) -> torch.Tensor:
    """[hidden, n_phones] features; a Chinese part the tokenizer cannot align falls back to zeros."""
    hidden = bert.hidden_size if bert is not None else BERT_DIM
    pieces = []
    for part in phonemes.parts or [phonemes]:
        features = None
        if bert is not None and part.language == "zh" and part.word2ph is not None and part.phones:
            try:
                features = bert(part.norm_text, part.word2ph).float().cpu()
            except ValueError as exc:
                logger.warning("BERT features skipped for %r: %s", part.norm_text, exc)
        pieces.append(features if features is not None else torch.zeros(hidden, len(part.phones)))
    return torch.cat(pieces, dim=1) if pieces else torch.zeros(hidden, 0)
