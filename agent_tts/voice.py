"""A voice: GPT + SoVITS files, a 3-10 s reference clip with its text, and the pretrained feature models.

Everything derived from the reference (prompt codes, spectrogram and speaker
vector `ge`, reference phones and BERT features) is computed once at load and
reused for every sentence. A voice can be described in a small TOML file:

    name = "alice"
    gpt = "GPT_weights_v2/alice-e15.ckpt"
    sovits = "SoVITS_weights_v2/alice_e8_s200.pth"
    ref_audio = "alice_ref.wav"
    ref_text = "今天的会议改到下午三点。"
    ref_language = "zh"                 # zh, en, ja or auto
    pretrained = "pretrained_models"    # holds chinese-hubert-base/ and chinese-roberta-wwm-ext-large/

Relative paths are relative to the TOML file. `hubert = ...` and `bert = ...`
name the two folders separately instead of `pretrained`.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from agent_tts.audio.clip import load_clip
from agent_tts.compute_device import compute_device
from agent_tts.errors import AgentTTSError, ReferenceAudioError
from agent_tts.models.checkpoints import load_sovits
from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.models.precision import PrecisionPlan, resolve_precision
from agent_tts.models.quantization import quantize_linear_weights
from agent_tts.models.shared import shared_gpt
from agent_tts.models.sovits import SoVITSConfig, SoVITSModel
from agent_tts.models.spectrogram import linear_spectrogram
from agent_tts.models.t2s import Text2SemanticModel
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.text.frontend import TextFrontend
from agent_tts.text.language_split import LANGUAGES
from agent_tts.text.phonemes import Phonemes

logger = logging.getLogger(__name__)

MIN_REFERENCE_SECONDS = 3.0
MAX_REFERENCE_SECONDS = 10.0
# The reference pads the 16 kHz prompt with 0.3 s of zeros counted at the model's rate.
PROMPT_PAD_SECONDS = 0.3
HUBERT_FOLDER = "chinese-hubert-base"
BERT_FOLDER = "chinese-roberta-wwm-ext-large"


def prompt_waveform_16k(path: str | Path, model_rate: int) -> np.ndarray:
    """The reference clip at 16 kHz with the reference's trailing zeros (HuBERT's input)."""
    wav16k = load_clip(path, 16000)
    return np.concatenate([wav16k, np.zeros(int(model_rate * PROMPT_PAD_SECONDS), np.float32)])


def reference_spectrogram(path: str | Path, config: SoVITSConfig) -> torch.Tensor:
    """Linear spectrogram [1, bins, frames] of the clip at the model rate, peak-limited as the reference does."""
    wav = torch.from_numpy(load_clip(path, config.sampling_rate))
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if peak > 1:
        wav = wav / min(2.0, peak)
    return linear_spectrogram(wav[None], config.filter_length, config.hop_length, config.win_length)


def default_voices_dir() -> Path:
    """Where voices are looked up by name: $AGENT_TTS_HOME/voices, else the user's config folder."""
    home = os.environ.get("AGENT_TTS_HOME")
    if home:
        return Path(home) / "voices"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "agent-tts" / "voices"


@dataclass(frozen=True)
class VoiceSpec:
    """Where a voice's files are; no models loaded."""

    name: str
    gpt: Path
    sovits: Path
    ref_audio: Path
    ref_text: str
    ref_language: str
    hubert: Path
    bert: Path

    @classmethod
    def from_toml(cls, path: str | Path) -> "VoiceSpec":
        path = Path(path)
        try:
            record = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AgentTTSError(f"{path}: voice file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise AgentTTSError(f"{path}: not valid TOML ({exc})") from None
        missing = [key for key in ("gpt", "sovits", "ref_audio", "ref_text") if key not in record]
        if missing:
            raise AgentTTSError(f"{path}: missing {', '.join(missing)}")
        base = path.parent
        pretrained = record.get("pretrained")
        hubert = record.get("hubert") or (pretrained and str(Path(pretrained) / HUBERT_FOLDER))
        bert = record.get("bert") or (pretrained and str(Path(pretrained) / BERT_FOLDER))
        if not hubert or not bert:
            raise AgentTTSError(f"{path}: set 'pretrained' (the folder with {HUBERT_FOLDER}/ and {BERT_FOLDER}/) "
                                "or both 'hubert' and 'bert'")
        language = record.get("ref_language", "auto")
        if language not in LANGUAGES:
            raise AgentTTSError(f"{path}: ref_language {language!r} is not one of {', '.join(LANGUAGES)}")
        return cls(
            name=record.get("name", path.stem), gpt=base / record["gpt"], sovits=base / record["sovits"],
            ref_audio=base / record["ref_audio"], ref_text=record["ref_text"], ref_language=language,
            hubert=base / hubert, bert=base / bert,
        )

    @classmethod
    def with_pretrained(cls, name: str, gpt: Path, sovits: Path, ref_audio: Path, ref_text: str, ref_language: str,
                        pretrained: Path) -> "VoiceSpec":
        """A spec whose HuBERT and BERT folders are the official ones inside `pretrained`."""
        return cls(name, Path(gpt), Path(sovits), Path(ref_audio), ref_text, ref_language,
                   Path(pretrained) / HUBERT_FOLDER, Path(pretrained) / BERT_FOLDER)

    def to_toml(self) -> str:
        """The spec as a voice TOML file, with absolute paths."""
        def quoted(value: str) -> str:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        fields = {"name": self.name, "gpt": self.gpt.resolve(), "sovits": self.sovits.resolve(),
                  "ref_audio": self.ref_audio.resolve(), "ref_text": self.ref_text, "ref_language": self.ref_language,
                  "hubert": self.hubert.resolve(), "bert": self.bert.resolve()}
        return "".join(f"{key} = {quoted(str(value))}\n" for key, value in fields.items())

    @classmethod
    def by_name(cls, name: str, voices_dir: str | Path | None = None) -> "VoiceSpec":
        folder = Path(voices_dir) if voices_dir is not None else default_voices_dir()
        path = folder / f"{name}.toml"
        if not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
            raise AgentTTSError(f"no voice named {name!r} in {folder}"
                                + (f" (known: {', '.join(known)})" if known else ""))
        return cls.from_toml(path)


BACKENDS = ("torch", "onnx", "openvino")


def checked_prompt_waveform(spec: VoiceSpec, model_rate: int) -> np.ndarray:
    """The reference clip at 16 kHz for HuBERT, after checking that it is 3-10 s long."""
    wav16k = prompt_waveform_16k(spec.ref_audio, model_rate)
    seconds = (len(wav16k) - int(model_rate * PROMPT_PAD_SECONDS)) / 16000
    if not MIN_REFERENCE_SECONDS <= seconds <= MAX_REFERENCE_SECONDS:
        raise ReferenceAudioError(f"{spec.ref_audio}: reference clip is {seconds:.1f} s; use one of "
                                  f"{MIN_REFERENCE_SECONDS:g}-{MAX_REFERENCE_SECONDS:g} s")
    return wav16k


def reference_phonemes(spec: VoiceSpec, frontend: TextFrontend) -> Phonemes:
    phonemes = frontend(spec.ref_text, spec.ref_language)
    if not phonemes.phones or phonemes.is_silent:
        raise AgentTTSError(f"voice {spec.name!r}: the reference text {spec.ref_text!r} has nothing to read")
    return phonemes


def resolve_spec(spec: VoiceSpec | str | Path) -> VoiceSpec:
    """A spec from a spec, a TOML path, or a voice name in the voices folder."""
    if isinstance(spec, (str, Path)):
        return VoiceSpec.from_toml(spec) if str(spec).endswith(".toml") else VoiceSpec.by_name(str(spec))
    return spec


@dataclass
class Voice:
    """Loaded models plus everything derived from the reference clip, ready to synthesize.

    With the torch backend `gpt`, `sovits` and `bert` are torch modules; with
    the ONNX backend they are their ONNX Runtime counterparts from
    `agent_tts.onnx.runtime`, which the engine drives through the same calls.
    """

    spec: VoiceSpec
    gpt: Text2SemanticModel
    sovits: SoVITSModel
    bert: BertFeatureExtractor
    frontend: TextFrontend
    prompt_codes: torch.Tensor          # [1, P] semantic tokens of the reference clip
    ge: torch.Tensor                    # [1, gin, 1] speaker vector
    ref_phonemes: Phonemes
    ref_bert: torch.Tensor              # [1024, n_ref_phones]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where the models run
    backend: str = "torch"
    precision: PrecisionPlan | None = None  # what each model runs in (None: fp32)

    @property
    def engine_device(self) -> torch.device:
        """Where the engine keeps its own tensors (phones, tokens, sampling): the models' device for torch; the CPU
        for ONNX Runtime, which moves what its device needs itself."""
        return self.device if self.backend == "torch" else torch.device("cpu")

    @property
    def sample_rate(self) -> int:
        return self.sovits.config.sampling_rate

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def load(cls, spec: VoiceSpec | str | Path, device: str | torch.device = "auto",
             precision: str = "fp32", backend: str = "torch", onnx_dir: str | Path | None = None) -> "Voice":
        """Load from a spec, a TOML path, or a voice name in the voices folder.

        `device`: auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda or cuda:N.
        `precision`: fp32 (the default: what the parity fixture checks), bf16, int8 (the CPU), fp16 (CUDA), or
        auto (bf16 where the CPU multiplies bf16 natively, else fp32); which model runs in what is in
        `agent_tts.models.precision`.
        `backend="onnx"` runs the voice's ONNX export (`agent-tts export-onnx`) from `onnx_dir`, by default the
        export folder for the voice's name; `backend="openvino"` the same export with the SoVITS decoder and BERT on
        OpenVINO (CPU; precision auto, bf16 or fp32). Voices made from the same GPT file share the loaded GPT (and so
        one batch of AR steps).
        """
        spec = resolve_spec(spec)
        device = compute_device(device)
        if backend not in BACKENDS:
            raise AgentTTSError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "onnx":
            if precision not in ("fp32", "auto"):
                raise AgentTTSError(f"the ONNX backend runs the fp32 export; precision={precision!r} is for the "
                                    "torch backend")
            from agent_tts.onnx.voice_loader import load_onnx_voice

            return load_onnx_voice(spec, onnx_dir, device)
        if backend == "openvino":
            if device.type != "cpu":
                raise AgentTTSError(f"the OpenVINO backend runs on the CPU, not {device}; use --device cpu")
            from agent_tts.openvino.voice_loader import load_openvino_voice

            return load_openvino_voice(spec, onnx_dir, precision)
        device = torch.device(device)
        plan = resolve_precision(precision, device)
        gpt = shared_gpt(spec.gpt, plan, device)
        sovits = load_sovits(spec.sovits).to(device).eval()
        hubert = HubertFeatureExtractor.from_folder(spec.hubert).to(device).eval()
        bert = BertFeatureExtractor.from_folder(spec.bert).to(device).eval()
        frontend = TextFrontend(version="v2")
        with torch.inference_mode():
            wav16k = checked_prompt_waveform(spec, sovits.config.sampling_rate)
            ssl = hubert(torch.from_numpy(wav16k).to(device)[None])
            prompt_codes = sovits.extract_latent(ssl)[0, :1]
            ge = sovits.speaker_embedding(reference_spectrogram(spec.ref_audio, sovits.config).to(device))
            ref_phonemes = reference_phonemes(spec, frontend)
            ref_bert = phone_level_bert(bert, ref_phonemes).to(device)
        del hubert
        sovits.to(plan.sovits_dtype)
        bert = quantize_linear_weights(bert, plan.bert_dtype) if plan.int8_weights else bert.to(plan.bert_dtype)
        return cls(spec, gpt, sovits, bert, frontend, prompt_codes, ge, ref_phonemes, ref_bert, device,
                   precision=plan)
