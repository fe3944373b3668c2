"""Random-weight GPT-SoVITS files in the official formats.

Used by the benchmarks (real v2, v2Pro and v2ProPlus sizes: random weights
cost the same compute as trained ones) and by the loader's tests (tiny sizes,
v1/v3 variants, our own tiny v2ProPlus). The files are written exactly as
upstream writes them: fp16 state dicts with the config stored inside, a torch
zip, optionally with a two-byte version tag in place of ``PK`` (upstream tags
every v2Pro/v2ProPlus file: :data:`UPSTREAM_HEADERS`), and the
speaker-verification model as a plain state dict.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agent_tts.models.sovits import SoVITSConfig, SoVITSModel
from agent_tts.models.speaker_verification import ERes2NetV2
from agent_tts.models.t2s import T2SConfig, Text2SemanticModel

REAL_V2_GPT_MODEL = {
    "vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512,
    "head": 16, "linear_units": 2048, "n_layer": 24, "dropout": 0, "EOS": 1024, "random_bert": 0,
}
REAL_V2_SOVITS_MODEL = {
    "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
    "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [10, 8, 2, 2, 2],
    "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3,
    "use_spectral_norm": False, "gin_channels": 512, "semantic_frame_rate": "25hz",
    "freeze_quantizer": True, "version": "v2",
}
SOVITS_DATA = {
    "max_wav_value": 32768.0, "sampling_rate": 32000, "filter_length": 2048, "hop_length": 640,
    "win_length": 2048, "n_mel_channels": 128, "mel_fmin": 0.0, "mel_fmax": None, "add_blank": True,
    "n_speakers": 300, "cleaned_text": True,
}
# upstream's s2v2Pro.json / s2v2ProPlus.json: v2ProPlus differs only in the generator
REAL_V2PRO_SOVITS_MODEL = dict(REAL_V2_SOVITS_MODEL, p_dropout=0.0, gin_channels=1024, version="v2Pro")
REAL_V2PROPLUS_SOVITS_MODEL = dict(REAL_V2PRO_SOVITS_MODEL, upsample_initial_channel=768,
                                   upsample_kernel_sizes=[20, 16, 8, 2, 2], version="v2ProPlus")
REAL_SOVITS_MODELS = {"v2": REAL_V2_SOVITS_MODEL, "v2Pro": REAL_V2PRO_SOVITS_MODEL,
                      "v2ProPlus": REAL_V2PROPLUS_SOVITS_MODEL}
TINY_GPT_MODEL = dict(REAL_V2_GPT_MODEL, embedding_dim=32, hidden_dim=32, head=2, linear_units=64, n_layer=1)
TINY_SOVITS_MODEL = dict(REAL_V2_SOVITS_MODEL, filter_channels=64, n_layers=2, upsample_initial_channel=32)
TINY_V2PRO_SOVITS_MODEL = dict(TINY_SOVITS_MODEL, gin_channels=64, version="v2Pro")
TINY_V2PROPLUS_SOVITS_MODEL = dict(TINY_V2PRO_SOVITS_MODEL, upsample_initial_channel=48,
                                   upsample_kernel_sizes=[20, 16, 8, 2, 2], version="v2ProPlus")
TINY_SOVITS_MODELS = {"v2": TINY_SOVITS_MODEL, "v2Pro": TINY_V2PRO_SOVITS_MODEL,
                      "v2ProPlus": TINY_V2PROPLUS_SOVITS_MODEL}
UPSTREAM_HEADERS = {"v2Pro": b"05", "v2ProPlus": b"06"}
SV_EMBEDDING_DIM = 20480


def _random_tensor(name: str, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("bias", "beta", "cluster_size"):
        return torch.zeros(shape)
    if leaf in ("gamma", "alpha", "inited") or (leaf == "weight" and ("norm" in name) and len(shape) == 1):
        return torch.ones(shape)
    if leaf == "weight_g":
        return torch.full(shape, 0.5)
    if leaf in ("embed", "embed_avg"):
        return torch.randn(shape, generator=generator)
    return torch.randn(shape, generator=generator) * 0.02


_BATCH_NORM_STATE = {"weight": torch.ones, "bias": torch.zeros, "running_mean": torch.zeros,
                     "running_var": torch.ones}


def random_state_dict(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """fp16 random weights for every entry of ``model``'s state dict (built on meta is fine).

    Batch norms get the identity (unit gain and variance, zero bias and mean); integer buffers stay integer zeros.
    """
    generator = torch.Generator().manual_seed(seed)
    norms = {name for name, module in model.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)}
    weights = {}
    for name, value in model.state_dict().items():
        prefix, _, leaf = name.rpartition(".")
        if not value.is_floating_point():
            weights[name] = torch.zeros(value.shape, dtype=value.dtype)
        elif prefix in norms:
            weights[name] = _BATCH_NORM_STATE[leaf](value.shape).half()
        else:
            weights[name] = _random_tensor(name, value.shape, generator).half()
    return weights


def _save(payload: dict[str, Any], path: Path, header: bytes | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    if header is not None:
        with open(path, "r+b") as handle:
            handle.write(header)
    return path


def write_gpt_checkpoint(path: str | Path, model_config: dict[str, Any] = REAL_V2_GPT_MODEL,
                         seed: int = 0, header: bytes | None = None) -> Path:
    """Write a GPT ``*.ckpt`` in the official s1 format with random weights."""
    config = {"model": copy.deepcopy(model_config), "data": {"max_sec": 54, "pad_val": 1024},
              "inference": {"top_k": 15}}
    # Upstream builds the feed-forward 4x the hidden width, whatever linear_units says.
    gpt = T2SConfig.from_file_config(model_config, feedforward_dim=4 * int(model_config["hidden_dim"]))
    with torch.device("meta"):
        model = Text2SemanticModel(gpt)
    weights = {f"model.{k}": v for k, v in random_state_dict(model, seed).items()}
    return _save({"weight": weights, "config": config, "info": "agent-tts synthetic"}, Path(path), header)


def write_sovits_checkpoint(path: str | Path, model_config: dict[str, Any] = REAL_V2_SOVITS_MODEL,
                            seed: int = 0, header: bytes | None = None, n_symbols: int = 732) -> Path:
    """Write a SoVITS ``*.pth`` in the official inference format (no ``enc_q``) with random weights.

    The model's version is ``model_config["version"]``; v2Pro/v2ProPlus files get the SV branch's weights.
    """
    config = {"data": dict(SOVITS_DATA), "model": copy.deepcopy(model_config), "content_module": "cnhubert"}
    version = str(model_config.get("version", "v2"))
    sv_dim = SV_EMBEDDING_DIM if version in UPSTREAM_HEADERS else 0
    sovits = SoVITSConfig.from_hparams(config["model"], config["data"], version, n_symbols=n_symbols, sv_dim=sv_dim)
    with torch.device("meta"):
        model = SoVITSModel(sovits)
    weights = random_state_dict(model, seed)
    return _save({"weight": weights, "config": config, "info": "agent-tts synthetic"}, Path(path), header)


def write_sv_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write the speaker-verification model (``sv/pretrained_eres2netv2w24s4ep4.ckpt``): a plain fp16 state dict."""
    with torch.device("meta"):
        model = ERes2NetV2()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state_dict(model, seed), path)
    return path
