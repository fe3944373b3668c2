"""A Piper VITS voice (ONNX + its JSON config) run on onnxruntime: IPA phonemes in, a waveform out."""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent_tts.errors import AgentTTSError

logger = logging.getLogger(__name__)

PAD, BOS, EOS = "_", "^", "$"


@dataclass(frozen=True)
class PiperConfig:
    """What the voice's `.onnx.json` says: rate, phoneme ids, eSpeak voice and default noise settings."""

    sample_rate: int
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float

    @classmethod
    def from_file(cls, path: str | Path) -> PiperConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            inference = data.get("inference", {})
            return cls(sample_rate=int(data["audio"]["sample_rate"]),
                       espeak_voice=data.get("espeak", {}).get("voice", "en-us"),
                       phoneme_id_map={key: list(ids) for key, ids in data["phoneme_id_map"].items()},
                       noise_scale=float(inference.get("noise_scale", 0.667)),
                       length_scale=float(inference.get("length_scale", 1.0)),
                       noise_w=float(inference.get("noise_w", 0.8)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AgentTTSError(f"{path}: not a Piper voice config ({exc})") from None


class PiperVoice:
    """One Piper ONNX model and its phoneme table; `synthesize(phonemes)` returns float32 PCM at `sample_rate`."""

    def __init__(self, model_path: str | Path, config_path: str | Path | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime

        model_path = Path(model_path)
        config_path = Path(config_path) if config_path else model_path.with_name(model_path.name + ".json")
        if not model_path.is_file():
            raise AgentTTSError(f"{model_path}: Piper model file not found")
        self.config = PiperConfig.from_file(config_path)
        self.sample_rate = self.config.sample_rate
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def phoneme_ids(self, phonemes: str) -> list[int]:
        """Piper's id sequence: BOS, then every phoneme's ids each followed by PAD, then EOS; unknown ones skipped."""
        table = self.config.phoneme_id_map
        ids = table[BOS] + table[PAD]
        for phoneme in unicodedata.normalize("NFD", phonemes):
            if phoneme in table:
                ids += table[phoneme] + table[PAD]
            else:
                logger.debug("phoneme %r is not in the voice's table; skipped", phoneme)
        return ids + table[EOS]

    def synthesize(self, phonemes: str, length_scale: float | None = None, noise_scale: float | None = None,
                   noise_w: float | None = None) -> np.ndarray:
        """The waveform for an IPA string (float32 mono, the model's own level)."""
        ids = np.array([self.phoneme_ids(phonemes)], dtype=np.int64)
        scales = np.array([self.config.noise_scale if noise_scale is None else noise_scale,
                           self.config.length_scale if length_scale is None else length_scale,
                           self.config.noise_w if noise_w is None else noise_w], dtype=np.float32)
        audio = self.session.run(None, {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
                                        "scales": scales})[0]
        return np.ascontiguousarray(audio.reshape(-1), dtype=np.float32)
