"""Where things sit in upstream's ``GPT_SoVITS/pretrained_models`` folder (and in ours, which mirrors it)."""

from __future__ import annotations

from pathlib import PurePosixPath

HUBERT_FOLDER = "chinese-hubert-base"
BERT_FOLDER = "chinese-roberta-wwm-ext-large"
# The speaker-verification model v2Pro and v2ProPlus voices need.
SV_CHECKPOINT = PurePosixPath("sv") / "pretrained_eres2netv2w24s4ep4.ckpt"
