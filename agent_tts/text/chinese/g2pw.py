"""Optional polyphone disambiguation with a g2pW ONNX model folder (G2PWModel_1.1 layout).

g2pW reads a whole sentence with BERT and picks the reading of each
polyphonic character (行 as xing2 or hang2) from context. It is used only
when the user has the model folder; without it the frontend keeps pypinyin's
phrase-dictionary readings, with no error.

The folder holds `g2pW.onnx`, `POLYPHONIC_CHARS.txt`, `MONOPHONIC_CHARS.txt`,
`bopomofo_to_pinyin_wo_tune_dict.json` and optionally `config.py`; the
tokenizer comes from the chinese-roberta-wwm-ext-large folder. The model was
trained on traditional characters, so sentences are converted with OpenCC
when the `opencc` package is installed (`pip install agent-tts[g2pw]`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import numpy as np
from pypinyin import Style, lazy_pinyin

from agent_tts.errors import AgentTTSError

logger = logging.getLogger(__name__)

MODEL_FILES = ("g2pW.onnx", "POLYPHONIC_CHARS.txt", "MONOPHONIC_CHARS.txt", "bopomofo_to_pinyin_wo_tune_dict.json")
# Characters g2pW lists as polyphonic whose reading the sandhi rules decide instead.
_LEFT_TO_RULES = set("一不和咋嗲剖差攢倒難奔勁拗肖瘙誒泊听噢")
_LEFT_TO_PYPINYIN = set("似攢")


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            char, reading = line.split("\t")[:2]
            pairs.append((char, reading.strip()))
    return pairs


def _config_flag(config_text: str, name: str, default: bool) -> bool:
    match = re.search(rf"^\s*{name}\s*=\s*(True|False)", config_text, re.M)
    return default if match is None else match.group(1) == "True"


def _traditional_converter():
    try:
        import opencc
    except ImportError:
        logger.warning("g2pW: the opencc package is not installed, so simplified characters are not converted to "
                       "the traditional ones the model knows; install agent-tts[g2pw] for full coverage")
        return None
    return opencc.OpenCC("s2tw").convert


class G2PWReader:
    """Sentence -> one tone-3 pinyin syllable per character, g2pW's choice for polyphonic characters."""

    def __init__(self, session, tokenizer, polyphonic: list[tuple[str, str]], monophonic: list[tuple[str, str]],
                 bopomofo_to_pinyin: dict[str, str], use_mask: bool = True, use_char_phoneme: bool = False,
                 to_traditional=None) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.use_mask = use_mask
        self.use_char_phoneme = use_char_phoneme
        self.bopomofo_to_pinyin = bopomofo_to_pinyin
        self.to_traditional = to_traditional
        if use_char_phoneme:
            self.labels = sorted({f"{char} {reading}" for char, reading in polyphonic})
            label_of = {label: index for index, label in enumerate(self.labels)}
            keys = [(char, label_of[f"{char} {reading}"]) for char, reading in polyphonic]
        else:
            self.labels = sorted({reading for _, reading in polyphonic})
            label_of = {label: index for index, label in enumerate(self.labels)}
            keys = [(char, label_of[reading]) for char, reading in polyphonic]
        self.char_labels: dict[str, list[int]] = {}
        for char, label in keys:
            self.char_labels.setdefault(char, []).append(label)
        self.chars = sorted(self.char_labels)
        self.char_index = {char: index for index, char in enumerate(self.chars)}
        self.polyphonic = set(self.chars) - _LEFT_TO_RULES
        self.monophonic = {char: reading for char, reading in monophonic if char not in _LEFT_TO_PYPINYIN}
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, model_dir: str | Path, bert_dir: str | Path) -> "G2PWReader":
        import onnxruntime
        from transformers import AutoTokenizer

        model_dir, bert_dir = Path(model_dir), Path(bert_dir)
        missing = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
        if missing:
            raise AgentTTSError(f"{model_dir}: not a g2pW model folder (missing {', '.join(missing)})")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(bert_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise AgentTTSError(f"{bert_dir}: cannot load the BERT tokenizer g2pW needs ({exc})") from exc
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(model_dir / "g2pW.onnx"), options,
                                               providers=["CPUExecutionProvider"])
        config_path = model_dir / "config.py"
        config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
        return cls(
            session, tokenizer,
            polyphonic=_read_pairs(model_dir / "POLYPHONIC_CHARS.txt"),
            monophonic=_read_pairs(model_dir / "MONOPHONIC_CHARS.txt"),
            bopomofo_to_pinyin=json.loads((model_dir / "bopomofo_to_pinyin_wo_tune_dict.json").read_text("utf-8")),
            use_mask=_config_flag(config_text, "use_mask", True),
            use_char_phoneme=_config_flag(config_text, "use_char_phoneme", False),
            to_traditional=_traditional_converter(),
        )

    def _to_pinyin(self, bopomofo: str) -> str | None:
        tone = bopomofo[-1:]
        syllable = self.bopomofo_to_pinyin.get(bopomofo[:-1])
        return syllable + tone if syllable and tone in "12345" else None

    def __call__(self, sentence: str) -> list[str]:
        readings = lazy_pinyin(sentence, neutral_tone_with_five=True, style=Style.TONE3)
        if len(readings) != len(sentence):
            return readings
        text = sentence
        if self.to_traditional is not None:
            converted = self.to_traditional(sentence)
            text = converted if len(converted) == len(sentence) else sentence
        queries = [index for index, char in enumerate(text) if char in self.polyphonic]
        for index, char in enumerate(text):
            if char in self.monophonic and index not in queries:
                readings[index] = self._to_pinyin(self.monophonic[char]) or readings[index]
        if not queries:
            return readings
        tokens = ["[CLS]", *text.lower(), "[SEP]"]
        token_ids = self.tokenizer.convert_tokens_to_ids(tokens)
        count = len(queries)
        feed = {
            "input_ids": np.tile(np.asarray(token_ids, np.int64), (count, 1)),
            "token_type_ids": np.zeros((count, len(tokens)), np.int64),
            "attention_mask": np.ones((count, len(tokens)), np.int64),
            "phoneme_mask": np.asarray([self._label_mask(text[index]) for index in queries], np.float32),
            "char_ids": np.asarray([self.char_index[text[index]] for index in queries], np.int64),
            "position_ids": np.asarray([index + 1 for index in queries], np.int64),
        }
        with self._lock:
            probabilities = self.session.run(None, feed)[0]
        for index, label in zip(queries, probabilities.argmax(axis=1)):
            bopomofo = self.labels[int(label)].split(" ")[-1]
            readings[index] = self._to_pinyin(bopomofo) or readings[index]
        return readings

    def _label_mask(self, char: str) -> list[float]:
        if not self.use_mask:
            return [1.0] * len(self.labels)
        allowed = set(self.char_labels[char])
        return [1.0 if label in allowed else 0.0 for label in range(len(self.labels))]


def load_g2pw(model_dir: str | Path | None, bert_dir: str | Path | None) -> G2PWReader | None:
    """The g2pW reader when its folder exists, else None (pypinyin readings), saying which on the log."""
    if model_dir is None or bert_dir is None or not Path(model_dir).is_dir():
        logger.info("g2pW model folder not found (%s); Chinese polyphones use pypinyin's phrase dictionary", model_dir)
        return None
    return G2PWReader.from_folder(model_dir, bert_dir)
