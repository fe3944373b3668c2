"""Reading the official GPT-SoVITS model files as they are.

* GPT (``*.ckpt``): ``{"weight": fp16 state dict with keys under "model.", "config": {...}}``.
* SoVITS (``*.pth``): ``{"weight": fp16 state dict without enc_q.*, "config": hparams, "info"}``,
  a torch zip whose first two bytes may be overwritten with a version tag
  (v2Pro and v2ProPlus files always are: ``05``, ``06``).
* Speaker verification (``sv/pretrained_eres2netv2w24s4ep4.ckpt`` in the
  pretrained folder, v2Pro/v2ProPlus only): a plain ERes2NetV2 state dict.

A SoVITS file's version comes from its header tag (``PK`` is put back before
unzipping); an untagged file is v1 when its phone table has 322 symbols, v3/v4
when it carries a CFM decoder, v2Pro/v2ProPlus when its stored config says so
or it carries the SV projection (``sv_emb``; ProPlus by its config's wider
generator), else v2. File sizes are never consulted.

Hyper-parameters come from the config stored inside each file, never from
defaults here. Every failure is a :class:`CheckpointError` whose one-line
message names the file and what was expected.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agent_tts.errors import CheckpointError, UnsupportedVersionError
from agent_tts.models.sovits import SoVITSConfig, SoVITSModel
from agent_tts.models.speaker_verification import ERes2NetV2
from agent_tts.models.t2s import T2SConfig, Text2SemanticModel
from agent_tts.models.weight_norm import fold_weight_norms
from agent_tts.pretrained_layout import SV_CHECKPOINT

# Upstream tags some SoVITS files by overwriting the zip's "PK" with two ASCII digits.
HEADER_VERSIONS = {b"00": "v1", b"01": "v2", b"02": "v3", b"03": "v3", b"04": "v4", b"05": "v2Pro", b"06": "v2ProPlus"}
SUPPORTED_VERSIONS = ("v2", "v2Pro", "v2ProPlus")
PRO_VERSIONS = ("v2Pro", "v2ProPlus")
# v2ProPlus's training config (s2v2ProPlus.json) widens the generator: 768 channels and a first upsampling
# kernel of 20 where v2Pro's has 512 and 16.
V2PROPLUS_FIRST_KERNEL = 20
ZIP_HEAD = b"PK"
LEGACY_TORCH_HEAD = b"\x80\x02"  # torch.save before zip files: a protocol-2 pickle
V1_SYMBOL_COUNT = 322
V1_GPT_PHONEME_VOCAB = 512
SV_KEYS = ("conv1.weight", "layer3_ds.weight", "fuse34.local_att.0.weight")


@dataclass
class RawCheckpoint:
    """The dict stored in a model file and the version it declares."""

    path: Path
    weights: dict[str, torch.Tensor]
    config: dict[str, Any]
    version: str


def read_header_version(path: Path) -> str | None:
    """The version tag of a file whose first two bytes replace the zip's ``PK``.

    None for an untagged torch file (zip, or a legacy pickle); "unknown" for anything else.
    """
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head in (ZIP_HEAD, LEGACY_TORCH_HEAD):
        return None
    return HEADER_VERSIONS.get(head, "unknown")


class StandIn:
    """Takes the place of a training-code class pickled into a file (upstream's ``utils.HParams``).

    Only the pickled attributes are kept; nothing named in the file is imported or called.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


def _stand_ins(source: Any) -> list[type]:
    """One :class:`StandIn` subclass per global the file names outside torch's weights-only allow-list."""
    classes = []
    for full_name in torch.serialization.get_unsafe_globals_in_checkpoint(source):
        module, _, name = full_name.rpartition(".")
        classes.append(type(name, (StandIn,), {"__module__": module, "__qualname__": name}))
    return classes


def _torch_load(path: Path, data: bytes | None) -> Any:
    """``torch.load`` in weights-only mode; foreign config classes are read as :class:`StandIn`."""
    source: Any = io.BytesIO(data) if data is not None else str(path)
    is_zip = zipfile.is_zipfile(source)
    mmap = data is None and is_zip
    try:
        return torch.load(_rewound(source), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        if not is_zip:
            raise
        stand_ins = _stand_ins(_rewound(source))
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(_rewound(source), map_location="cpu", weights_only=True, mmap=mmap)


def _rewound(source: Any) -> Any:
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return source


FILE_KINDS = {"GPT": "GPT (.ckpt)", "SoVITS": "SoVITS (.pth)"}


def unsupported_version(path: Path, version: str, kind: str) -> UnsupportedVersionError:
    """The one-line refusal of a valid file of a version agent-tts does not implement (``kind``: GPT or SoVITS)."""
    return UnsupportedVersionError(
        f"{path}: GPT-SoVITS {version} {kind} file detected; "
        f"agent-tts implements {', '.join(SUPPORTED_VERSIONS[:-1])} and {SUPPORTED_VERSIONS[-1]} so far"
    )


def _read(path: str | Path, kind: str) -> tuple[Path, dict[str, Any], str | None]:
    path = Path(path)
    expected = f"a GPT-SoVITS {FILE_KINDS[kind]} file"
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (expected {expected})")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a file (expected {expected})")
    header_version = read_header_version(path)
    if header_version not in (None, "unknown", "v1", *SUPPORTED_VERSIONS):
        raise unsupported_version(path, header_version, kind)
    stored = _read_torch_file(path, header_version, expected)
    if not isinstance(stored, dict) or not isinstance(stored.get("weight"), dict) or "config" not in stored:
        raise CheckpointError(f"{path}: a torch file but not {expected} (no 'weight' and 'config' entries)")
    return path, stored, header_version


def _read_torch_file(path: Path, header_version: str | None, expected: str) -> Any:
    """The object stored in a torch file, with ``PK`` put back first where a version tag replaced it."""
    if header_version == "unknown":
        raise CheckpointError(f"{path}: not a torch checkpoint (expected {expected})")
    data = ZIP_HEAD + path.read_bytes()[2:] if header_version is not None else None
    try:
        return _torch_load(path, data)
    except (zipfile.BadZipFile, RuntimeError, EOFError, pickle.UnpicklingError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint, cannot be read (expected {expected})") from exc


def _as_dict(config: Any) -> dict[str, Any]:
    """A config as nested dicts, whether stored as a dict or as a pickled HParams-like object."""
    if isinstance(config, dict):
        return {k: _as_dict(v) if isinstance(v, (dict, StandIn)) else v for k, v in config.items()}
    if isinstance(config, StandIn):
        return _as_dict(vars(config))
    return {}


def read_gpt_checkpoint(path: str | Path) -> RawCheckpoint:
    """Read a GPT (s1) file; its version is v1 for a 512-phone vocabulary, else v2."""
    path, stored, header_version = _read(path, "GPT")
    config = _as_dict(stored["config"])
    model_config = config.get("model")
    if not isinstance(model_config, dict) or "phoneme_vocab_size" not in model_config:
        raise CheckpointError(f"{path}: no config['model'] with the GPT sizes (is this a SoVITS .pth file?)")
    weights = {k.removeprefix("model."): v for k, v in stored["weight"].items() if k.startswith("model.")}
    if not weights:
        raise CheckpointError(f"{path}: no 'model.*' weights (expected a GPT-SoVITS GPT .ckpt file)")
    version = header_version or ("v1" if model_config["phoneme_vocab_size"] == V1_GPT_PHONEME_VOCAB else "v2")
    return RawCheckpoint(path, weights, config, version)


def read_sovits_checkpoint(path: str | Path) -> RawCheckpoint:
    """Read a SoVITS (s2) file; its version from the header tag, else from the symbol table, config and weights."""
    path, stored, header_version = _read(path, "SoVITS")
    config = _as_dict(stored["config"])
    weights = stored["weight"]
    embedding = weights.get("enc_p.text_embedding.weight")
    if embedding is None or not isinstance(config.get("model"), dict) or not isinstance(config.get("data"), dict):
        raise CheckpointError(
            f"{path}: no enc_p.text_embedding weight or config['model'/'data'] "
            "(expected a GPT-SoVITS SoVITS .pth file; is this a GPT .ckpt?)"
        )
    return RawCheckpoint(path, weights, config, header_version or _untagged_sovits_version(weights, config))


def _untagged_sovits_version(weights: dict[str, torch.Tensor], config: dict[str, Any]) -> str:
    """The version of a SoVITS file that kept its ``PK``: symbol count, then the stored config, then the weights."""
    if weights["enc_p.text_embedding.weight"].shape[0] == V1_SYMBOL_COUNT:
        return "v1"
    if any(key.startswith("cfm.") for key in weights):
        return "v3/v4"
    stored = config["model"].get("version")
    if stored in PRO_VERSIONS:
        return stored
    if "sv_emb.weight" in weights:
        kernels = config["model"].get("upsample_kernel_sizes") or [0]
        return "v2ProPlus" if int(kernels[0]) >= V2PROPLUS_FIRST_KERNEL else "v2Pro"
    return "v2"


def _require_version(raw: RawCheckpoint, kind: str) -> None:
    if raw.version not in SUPPORTED_VERSIONS:
        raise unsupported_version(raw.path, raw.version, kind)


def gpt_config(raw: RawCheckpoint) -> T2SConfig:
    """GPT sizes: the file's config, plus the widths only the weight shapes tell."""
    try:
        return T2SConfig.from_file_config(
            raw.config["model"],
            feedforward_dim=int(raw.weights["h.layers.0.linear1.weight"].shape[0]),
            bert_dim=int(raw.weights["bert_proj.weight"].shape[1]),
        )
    except KeyError as exc:
        raise CheckpointError(f"{raw.path}: GPT file lacks {exc.args[0]!r} (config or weights incomplete)") from exc


def sovits_config(raw: RawCheckpoint) -> SoVITSConfig:
    """SoVITS sizes: the file's hparams, plus the dims only the weight shapes tell."""
    weights = raw.weights
    try:
        return SoVITSConfig.from_hparams(
            raw.config["model"], raw.config["data"], raw.version,
            n_symbols=int(weights["enc_p.text_embedding.weight"].shape[0]),
            ref_spec_bins=int(weights["ref_enc.spectral.0.fc.weight"].shape[1]),
            ssl_dim=int(weights["ssl_proj.weight"].shape[0]),
            codebook_size=int(weights["quantizer.vq.layers.0._codebook.embed"].shape[0]),
            n_codebooks=sum(1 for k in weights if k.endswith("._codebook.embed")),
            mrte_channels=int(weights["enc_p.mrte.c_pre.weight"].shape[0]),
            sv_dim=int(weights["sv_emb.weight"].shape[1]) if raw.version in PRO_VERSIONS else 0,
        )
    except KeyError as exc:
        raise CheckpointError(f"{raw.path}: SoVITS file lacks {exc.args[0]!r} (config or weights incomplete)") from exc


def materialize(model: nn.Module, weights: dict[str, torch.Tensor], path: Path,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> nn.Module:
    """Load ``weights`` (strict) into a model built on the meta device, without random init."""
    converted = {k: v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)
                 for k, v in weights.items()}
    try:
        model.load_state_dict(converted, strict=True, assign=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"{path}: weights do not match the model ({detail[:300]})") from exc
    fold_weight_norms(model)
    return model.eval().requires_grad_(False)


def _build(raw: RawCheckpoint, kind: str, make_model: Callable[[RawCheckpoint], nn.Module],
           dtype: torch.dtype, device: torch.device | str) -> nn.Module:
    _require_version(raw, kind)
    with torch.device("meta"):
        model = make_model(raw)
    return materialize(model, raw.weights, raw.path, dtype, device)


def load_gpt(source: str | Path | RawCheckpoint, dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> Text2SemanticModel:
    """Build the GPT from a ``*.ckpt`` file, or from one already read."""
    raw = source if isinstance(source, RawCheckpoint) else read_gpt_checkpoint(source)
    return _build(raw, "GPT", lambda raw: Text2SemanticModel(gpt_config(raw)), dtype, device)


def load_sovits(source: str | Path | RawCheckpoint, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> SoVITSModel:
    """Build SoVITS (v2, v2Pro or v2ProPlus) from a ``*.pth`` inference file, or from one already read."""
    raw = source if isinstance(source, RawCheckpoint) else read_sovits_checkpoint(source)
    return _build(raw, "SoVITS", lambda raw: SoVITSModel(sovits_config(raw)), dtype, device)


def sovits_version(path: str | Path) -> str:
    """The version a SoVITS file declares (v1, v2, v2Pro, ...), without building the model."""
    return read_sovits_checkpoint(path).version


def needs_speaker_verification(version: str) -> bool:
    """Whether voices of this SoVITS version need the speaker-verification model (v2Pro, v2ProPlus)."""
    return version in PRO_VERSIONS


def missing_sv_checkpoint(path: Path, version: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: no such file; {version} voices need the speaker-verification model upstream keeps at "
        f"GPT_SoVITS/pretrained_models/{SV_CHECKPOINT} (fetch it with: agent-tts download, or set "
        "'sv' in the voice file)")


def load_speaker_verification(path: str | Path, version: str = "v2Pro", dtype: torch.dtype = torch.float32,
                              device: torch.device | str = "cpu") -> ERes2NetV2:
    """Build the speaker-verification model from ``sv/pretrained_eres2netv2w24s4ep4.ckpt`` (a plain state dict).

    ``version`` names the voice's version in the error when the file is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise missing_sv_checkpoint(path, version)
    expected = f"the ERes2NetV2 speaker-verification state dict ({SV_CHECKPOINT})"
    header_version = read_header_version(path)
    stored = _read_torch_file(path, None if header_version is None else "unknown", expected)
    if not isinstance(stored, dict) or not all(isinstance(stored.get(key), torch.Tensor) for key in SV_KEYS):
        raise CheckpointError(f"{path}: a torch file but not {expected}")
    with torch.device("meta"):
        model = ERes2NetV2()
    return materialize(model, stored, path, dtype, device)
