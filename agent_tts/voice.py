"""A voice: GPT + SoVITS files, a 3-10 s reference clip with its text, and the pretrained feature models.

Everything derived from the reference (prompt codes, spectrogram, the
speaker-verification embedding of v2Pro voices, speaker vector `ge`,
reference phones and BERT features) is computed once at load and reused for
every sentence (`reference.py`). A voice can be described in a small TOML file:

    name = "alice"
    gpt = "GPT_weights_v2/alice-e15.ckpt"
    sovits = "SoVITS_weights_v2/alice_e8_s200.pth"
    ref_audio = "alice_ref.wav"
    ref_text = "今天的会议改到下午三点。"
    ref_language = "zh"                 # zh, en, ja or auto
    pretrained = "pretrained_models"    # holds chinese-hubert-base/, chinese-roberta-wwm-ext-large/, sv/
    aux_ref_audio = ["alice_2.wav"]     # optional: more clips whose speaker vectors are averaged in

Relative paths are relative to the TOML file. `hubert = ...` and `bert = ...`
name the two folders separately instead of `pretrained`; `sv = ...` names the
speaker-verification model v2Pro and v2ProPlus voices need (by default
`sv/pretrained_eres2netv2w24s4ep4.ckpt` in the pretrained folder, or beside
the HuBERT folder).
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from agent_tts.compute_device import compute_device
from agent_tts.engine.openmp_pool import release_idle_workers
from agent_tts.errors import AgentTTSError
from agent_tts.models.checkpoints import load_sovits, load_speaker_verification
from agent_tts.models.packed_linear import pack_bert_if_faster
from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.models.precision import PrecisionPlan, resolve_precision
from agent_tts.models.shared import shared_gpt
from agent_tts.models.sovits import SoVITSModel
from agent_tts.models.t2s import Text2SemanticModel
from agent_tts.pretrained_layout import BERT_FOLDER, HUBERT_FOLDER, SV_CHECKPOINT
from agent_tts.reference import ReferenceFeatures, TorchReferenceEncoders, derive_reference_features
from agent_tts.text.frontend import TextFrontend
from agent_tts.text.language_split import LANGUAGES
from agent_tts.text.phonemes import Phonemes

logger = logging.getLogger(__name__)



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
    aux_ref_audio: tuple[Path, ...] = ()    # more clips for the speaker vector, averaged with ref_audio's
    sv: Path | None = None                  # the speaker-verification model (v2Pro/v2ProPlus); None: sv/ beside hubert

    def __post_init__(self) -> None:
        if self.sv is None:
            object.__setattr__(self, "sv", self.hubert.parent / SV_CHECKPOINT)

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
        aux = record.get("aux_ref_audio", [])
        if not isinstance(aux, list) or not all(isinstance(item, str) for item in aux):
            raise AgentTTSError(f"{path}: aux_ref_audio must be a list of audio file paths")
        sv = record.get("sv") or (pretrained and str(Path(pretrained) / SV_CHECKPOINT))
        return cls(
            name=record.get("name", path.stem), gpt=base / record["gpt"], sovits=base / record["sovits"],
            ref_audio=base / record["ref_audio"], ref_text=record["ref_text"], ref_language=language,
            hubert=base / hubert, bert=base / bert, aux_ref_audio=tuple(base / item for item in aux),
            sv=base / sv if sv else None,
        )

    @classmethod
    def with_pretrained(cls, name: str, gpt: Path, sovits: Path, ref_audio: Path, ref_text: str, ref_language: str,
                        pretrained: Path, aux_ref_audio: tuple[Path, ...] = ()) -> "VoiceSpec":
        """A spec whose HuBERT, BERT and speaker-verification files are the official ones inside `pretrained`."""
        pretrained = Path(pretrained)
        return cls(name, Path(gpt), Path(sovits), Path(ref_audio), ref_text, ref_language,
                   pretrained / HUBERT_FOLDER, pretrained / BERT_FOLDER, tuple(Path(path) for path in aux_ref_audio),
                   pretrained / SV_CHECKPOINT)

    def to_toml(self) -> str:
        """The spec as a voice TOML file, with absolute paths."""
        def quoted(value: str) -> str:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        fields = {"name": self.name, "gpt": self.gpt.resolve(), "sovits": self.sovits.resolve(),
                  "ref_audio": self.ref_audio.resolve(), "ref_text": self.ref_text, "ref_language": self.ref_language,
                  "hubert": self.hubert.resolve(), "bert": self.bert.resolve(), "sv": self.sv.resolve()}
        lines = [f"{key} = {quoted(str(value))}\n" for key, value in fields.items()]
        if self.aux_ref_audio:
            lines.append(f"aux_ref_audio = [{', '.join(quoted(str(path.resolve())) for path in self.aux_ref_audio)}]\n")
        return "".join(lines)

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
    reference: ReferenceFeatures
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where the models run
    backend: str = "torch"
    precision: PrecisionPlan | None = None  # what each model runs in (None: fp32)

    @property
    def engine_device(self) -> torch.device:
        """Where the engine keeps its own tensors (phones, tokens, sampling): the models' device for torch; the CPU
        for ONNX Runtime, which moves what its device needs itself."""
        return self.device if self.backend == "torch" else torch.device("cpu")

    @property
    def prompt_codes(self) -> torch.Tensor:
        """[1, P] semantic tokens of the reference clip."""
        return self.reference.prompt_codes

    @property
    def ge(self) -> torch.Tensor:
        """[1, gin, 1] speaker vector for `sovits.decode` (v2Pro: the model derives the MRTE's 512-d one from it)."""
        return self.reference.ge

    @property
    def ref_phonemes(self) -> Phonemes:
        return self.reference.ref_phonemes

    @property
    def ref_bert(self) -> torch.Tensor:
        """[1024, n_ref_phones] BERT features of the reference text."""
        return self.reference.ref_bert

    @property
    def version(self) -> str:
        """The SoVITS file's version: v2, v2Pro or v2ProPlus."""
        return self.sovits.config.version

    @property
    def sample_rate(self) -> int:
        return self.sovits.config.sampling_rate

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def load(cls, spec: VoiceSpec | str | Path, device: str | torch.device = "auto",
             precision: str | PrecisionPlan = "fp32", backend: str = "torch",
             onnx_dir: str | Path | None = None) -> "Voice":
        """Load from a spec, a TOML path, or a voice name in the voices folder.

        `device`: auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda or cuda:N.
        `precision`: fp32 (the default: what the parity fixture checks), bf16, int8 (the CPU), fp16 (CUDA), or
        auto (int8 where the CPU multiplies bf16 natively, else fp32); which model runs in what is in
        `agent_tts.models.precision`. The torch backend also takes a `PrecisionPlan` as it is (one resolved for
        another CPU's features, as the tests do).
        `backend="onnx"` runs the voice's ONNX export (`agent-tts export-onnx`) from `onnx_dir`, by default the
        export folder for the voice's name; `backend="openvino"` the same export with the SoVITS decoder and BERT on
        OpenVINO (CPU; precision fp32, bf16, int8 or auto: see `agent_tts.openvino.voice_loader`). Voices made
        from the same GPT file share the loaded GPT (and so one batch of AR steps).
        """
        spec = resolve_spec(spec)
        device = compute_device(device)
        if backend not in BACKENDS:
            raise AgentTTSError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend != "torch" and not isinstance(precision, str):
            raise AgentTTSError(f"the {backend} backend takes a precision name, not a plan")
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
        sv_model = None
        if sovits.config.uses_speaker_verification:
            sv_model = load_speaker_verification(spec.sv, sovits.config.version, device=device)
        hubert = HubertFeatureExtractor.from_folder(spec.hubert).to(device).eval()
        bert = BertFeatureExtractor.from_folder(spec.bert).to(device).eval()
        frontend = TextFrontend(version="v2")
        encoders = TorchReferenceEncoders(hubert, sovits, sv_model, device)
        reference = derive_reference_features(spec, encoders, bert, frontend, sovits.config, device)
        del encoders, hubert, sv_model  # used once per reference clip
        sovits.to(plan.sovits_dtype)
        bert = bert.to(plan.bert_dtype)
        pack_bert_if_faster(bert)
        release_idle_workers()  # the loading thread's OpenMP workers would slow every stream's (openmp_pool.py)
        return cls(spec, gpt, sovits, bert, frontend, reference, device, precision=plan)
