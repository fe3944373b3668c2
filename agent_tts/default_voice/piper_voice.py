"""A Piper VITS voice (ONNX + its JSON config) run on onnxruntime: IPA phonemes in, a waveform out, with the time
each phoneme begins.

Piper's exported graph has one output, the waveform; the duration predictor's
rounded frame counts per phoneme id (`w_ceil`, the graph's only `Ceil` node)
are an internal tensor. The graph is loaded with that tensor added as a second
output, so every synthesis also says how many output frames (`hop` samples
each: the waveform is exactly their sum) each phoneme id got: exact timing for
this model. A graph without such a node gives no durations (`synthesize_timed`
then returns None for them, and the engine places words in proportion to the
phoneme string instead).
"""

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
        # Idle worker threads sleep instead of spinning: the sound device's callback shares these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model, self._has_durations = _with_durations_output(model_path)
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def phoneme_ids(self, phonemes: str) -> list[int]:
        """Piper's id sequence: BOS, then every phoneme's ids each followed by PAD, then EOS; unknown ones skipped."""
        return self._ids_and_positions(phonemes)[0]

    def _ids_and_positions(self, phonemes: str) -> tuple[list[int], list[int]]:
        """The id sequence, and for each character of the NFD phoneme string the index of its first id (an
        unknown character: the next known one's)."""
        table = self.config.phoneme_id_map
        ids = table[BOS] + table[PAD]
        positions = []
        for phoneme in unicodedata.normalize("NFD", phonemes):
            positions.append(len(ids))
            if phoneme in table:
                ids += table[phoneme] + table[PAD]
            else:
                logger.debug("phoneme %r is not in the voice's table; skipped", phoneme)
        return ids + table[EOS], positions

    def synthesize(self, phonemes: str, length_scale: float | None = None, noise_scale: float | None = None,
                   noise_w: float | None = None) -> np.ndarray:
        """The waveform for an IPA string (float32 mono, the model's own level)."""
        return self.synthesize_timed(phonemes, length_scale, noise_scale, noise_w)[0]

    def synthesize_timed(self, phonemes: str, length_scale: float | None = None, noise_scale: float | None = None,
                         noise_w: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The waveform, and for each character of the NFD phoneme string the sample where its sound begins
        (None when the graph gives no durations)."""
        id_list, positions = self._ids_and_positions(phonemes)
        ids = np.array([id_list], dtype=np.int64)
        scales = np.array([self.config.noise_scale if noise_scale is None else noise_scale,
                           self.config.length_scale if length_scale is None else length_scale,
                           self.config.noise_w if noise_w is None else noise_w], dtype=np.float32)
        outputs = self.session.run(None, {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
                                          "scales": scales})
        audio = np.ascontiguousarray(outputs[0].reshape(-1), dtype=np.float32)
        if not self._has_durations:
            return audio, None
        frames = outputs[1].reshape(-1)
        hop = len(audio) / max(1.0, float(frames.sum()))
        id_starts = np.concatenate([[0.0], np.cumsum(frames)]) * hop
        return audio, np.round(id_starts[np.asarray(positions, dtype=np.int64)]).astype(np.int64) if positions \
            else np.zeros(0, np.int64)


def _with_durations_output(model_path: Path) -> tuple[bytes | str, bool]:
    """The model with its duration tensor (the output of its `Ceil` node) as a second output, serialized; the
    path as it is (and False) when the graph has no such node or `onnx` cannot read it."""
    try:
        import onnx

        model = onnx.load(str(model_path))
    except Exception as exc:  # noqa: BLE001 - the voice still speaks, without word times
        logger.warning("%s: cannot read the graph for phoneme durations (%s); word times will be estimates", model_path,
                       exc)
        return str(model_path), False
    ceil = next((node for node in model.graph.node if node.op_type == "Ceil"), None)
    if ceil is None:
        logger.warning("%s: no phoneme durations in the graph; word times will be estimates", model_path)
        return str(model_path), False
    model.graph.output.append(onnx.helper.make_tensor_value_info(ceil.output[0], onnx.TensorProto.FLOAT, None))
    return model.SerializeToString(), True
