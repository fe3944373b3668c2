"""A complete voice with random weights: GPT and SoVITS files, HuBERT and BERT folders, a clip, a TOML.

For speed benchmarks (real v2, v2Pro or v2ProPlus sizes; random weights compute
exactly what trained ones do) and for tests that need a voice folder. v2Pro
and v2ProPlus voices also get the speaker-verification model (always its real
53.6 M-parameter architecture) in ``pretrained/sv/``, where upstream keeps it. The
BERT vocabulary covers ASCII and the CJK Unified Ideographs block, one token
per character, like the real chinese-roberta vocabulary does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import torch

from agent_tts.pretrained_layout import SV_CHECKPOINT
from agent_tts.models.synthetic import (
    REAL_SOVITS_MODELS, REAL_V2_GPT_MODEL, TINY_GPT_MODEL, TINY_SOVITS_MODELS, UPSTREAM_HEADERS,
    write_gpt_checkpoint, write_sovits_checkpoint, write_sv_checkpoint,
)

REAL_BERT = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}
TINY_BERT = {"hidden_size": 1024, "num_hidden_layers": 2, "num_attention_heads": 16, "intermediate_size": 64}
REAL_HUBERT = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
TINY_HUBERT = {"hidden_size": 768, "num_hidden_layers": 1, "num_attention_heads": 12, "intermediate_size": 64}
REFERENCE_TEXT = "今天的会议改到下午三点，请大家准时参加。"


def _bert_vocabulary() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    ascii_tokens = [chr(code) for code in range(33, 127)]
    cjk = [chr(code) for code in range(0x4E00, 0xA000)]
    punctuation = list("，。！？、；：“”‘’（）《》…—")
    return specials + ascii_tokens + punctuation + cjk


def write_bert_folder(folder: Path, sizes: dict, seed: int = 0) -> Path:
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(_bert_vocabulary()) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=len(_bert_vocabulary()), **sizes))
    model.half().save_pretrained(folder)
    BertTokenizer(str(vocab), do_lower_case=True, tokenize_chinese_chars=True).save_pretrained(folder)
    return folder


def write_hubert_folder(folder: Path, sizes: dict, seed: int = 0) -> Path:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    HubertModel(HubertConfig(**sizes)).half().save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    return folder


def write_reference_clip(path: Path, seconds: float = 5.0, rate: int = 32000, seed: int = 0) -> Path:
    """A voiced-sounding test signal: a gliding harmonic tone with syllable-like loudness and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    wav = 0.2 * voiced * envelope + 0.01 * rng.standard_normal(len(t))
    soundfile.write(path, wav.astype(np.float32), rate)
    return path


def write_synthetic_voice(folder: str | Path, real_size: bool = True, name: str = "synthetic",
                          version: str = "v2") -> Path:
    """Write every file of a random-weight voice of `version` (v2, v2Pro, v2ProPlus) under `folder`; returns its
    TOML path."""
    return write_synthetic_voices(folder, (version,), real_size, name)[version]


def write_synthetic_voices(folder: str | Path, versions: tuple[str, ...], real_size: bool = True,
                           name: str = "synthetic") -> dict[str, Path]:
    """Random-weight voices of several versions sharing one GPT, HuBERT, BERT and clip; the TOML path of each.

    The first version's TOML is ``{name}.toml``, the others ``{name}-{version}.toml`` with ``s2-{version}.pth``.
    """
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sovits_models = REAL_SOVITS_MODELS if real_size else TINY_SOVITS_MODELS
    write_gpt_checkpoint(folder / "s1.ckpt", REAL_V2_GPT_MODEL if real_size else TINY_GPT_MODEL)
    write_hubert_folder(folder / "pretrained" / "chinese-hubert-base", REAL_HUBERT if real_size else TINY_HUBERT)
    write_bert_folder(folder / "pretrained" / "chinese-roberta-wwm-ext-large", REAL_BERT if real_size else TINY_BERT)
    if any(version in UPSTREAM_HEADERS for version in versions):
        write_sv_checkpoint(folder / "pretrained" / SV_CHECKPOINT)
    write_reference_clip(folder / "ref.wav")
    tomls = {}
    for index, version in enumerate(versions):
        voice_name, sovits = (name, "s2.pth") if index == 0 else (f"{name}-{version}", f"s2-{version}.pth")
        write_sovits_checkpoint(folder / sovits, sovits_models[version], header=UPSTREAM_HEADERS.get(version))
        tomls[version] = folder / f"{voice_name}.toml"
        tomls[version].write_text(
            f'name = "{voice_name}"\ngpt = "s1.ckpt"\nsovits = "{sovits}"\nref_audio = "ref.wav"\n'
            f'ref_text = "{REFERENCE_TEXT}"\nref_language = "zh"\npretrained = "pretrained"\n', encoding="utf-8")
    return tomls
