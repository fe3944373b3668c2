"""Upstream GPT-SoVITS `api_v2.py` `/tts` parameters: names, defaults and parsing, as its clients send them.

GET sends every value as a string, often empty (`prompt_text=&seed=`); POST
sends JSON with upstream's types. Both go through `parse_tts_params`: an
empty or missing value takes upstream's default, numbers and booleans may be
strings, `streaming_mode` is a boolean or 0-3. Parameters that mean nothing
to this engine are checked the way upstream checks them, then ignored
(`IGNORED`, listed in docs/server.md with why).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent_tts.server.api_errors import ApiError, bad_request

# upstream's language codes (v2) -> this frontend's; the others are refused with the list
LANGUAGES = {"zh": "zh", "all_zh": "zh", "en": "en", "ja": "ja", "all_ja": "ja", "auto": "auto"}
UNSUPPORTED_LANGUAGES = ("yue", "all_yue", "auto_yue", "ko", "all_ko")
MEDIA_TYPES = ("wav", "raw", "ogg", "aac")
TEXT_SPLIT_METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")
# Accepted and checked like upstream, without effect here: name -> (kind, upstream default).
IGNORED: dict[str, tuple[str, Any]] = {
    "aux_ref_audio_paths": ("list", None), "text_split_method": ("split", "cut5"), "batch_size": ("int", 1),
    "batch_threshold": ("float", 0.75), "split_bucket": ("bool", True), "fragment_interval": ("float", 0.3),
    "parallel_infer": ("bool", True), "sample_steps": ("int", 32), "super_sampling": ("bool", False),
    "overlap_length": ("int", 2), "min_chunk_length": ("int", 16), "return_fragment": ("bool", False),
}
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


@dataclass(frozen=True)
class TtsParams:
    """A checked `/tts` request: what to say, which reference or voice, how, and in what form."""

    text: str
    text_lang: str
    ref_audio_path: str | None
    prompt_text: str | None
    prompt_lang: str | None
    voice: str | None                  # extension: a registered voice, instead of the current weights + reference
    options: dict[str, Any]            # SynthesisOptions fields
    media_type: str
    streaming_mode: int                # 0: the whole file at the end; 1-3: streamed as made


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(params: Mapping[str, Any], name: str, default: float, kind: type) -> Any:
    """An int or float parameter; JSON numbers or their strings; empty: `default`."""
    value = params.get(name)
    if _empty(value):
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        number = value if isinstance(value, int) else float(value)
        if kind is float:
            return float(number)
        if number != int(number):
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):
        words = "an integer" if kind is int else "a number"
        raise bad_request(f"{name} must be {words}, got {value!r}", name) from None


def _int(params: Mapping[str, Any], name: str, default: int) -> int:
    return _number(params, name, default, int)


def _float(params: Mapping[str, Any], name: str, default: float) -> float:
    return _number(params, name, default, float)


def _bool(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if _empty(value):
        return default
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise bad_request(f"{name} must be true or false, got {value!r}", name)


def text_param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if _empty(value):
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string, got {value!r}", name)
    return value


def language_param(params: Mapping[str, Any], name: str) -> str | None:
    value = text_param(params, name)
    if value is None:
        return None
    code = value.strip().lower()
    if code not in LANGUAGES:
        known = ", ".join(LANGUAGES)
        reason = "is not supported by this engine" if code in UNSUPPORTED_LANGUAGES else "is not a language code"
        raise bad_request(f"{name}: {value} {reason} (use one of {known})", name)
    return LANGUAGES[code]


def streaming_mode(params: Mapping[str, Any]) -> int:
    """upstream's `streaming_mode`: false/0 whole, true/1, 2, 3 streamed (all token-level here)."""
    value = params.get("streaming_mode")
    if _empty(value):
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and 0 <= value <= 3:
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false"):
            return int(word == "true")
        if word in ("0", "1", "2", "3"):
            return int(word)
    raise ApiError(400, f"streaming_mode must be 0, 1, 2, 3 or true/false, got {value!r}", "streaming_mode")


def _check_ignored(params: Mapping[str, Any]) -> None:
    for name, (kind, default) in IGNORED.items():
        if kind == "int":
            _int(params, name, default)
        elif kind == "float":
            _float(params, name, default)
        elif kind == "bool":
            _bool(params, name, default)
        elif kind == "split":
            method = text_param(params, name)
            if method is not None and method not in TEXT_SPLIT_METHODS:
                raise bad_request(f"text_split_method:{method} is not supported (one of "
                                  f"{', '.join(TEXT_SPLIT_METHODS)})", name)


def parse_tts_params(params: Mapping[str, Any], max_input_chars: int) -> TtsParams:
    """Check a `/tts` request's parameters (GET strings or POST JSON values) as upstream does, and then some."""
    text = text_param(params, "text")
    if text is None:
        raise bad_request("text is required", "text")
    if len(text) > max_input_chars:
        raise bad_request(f"text is {len(text)} characters; the most is {max_input_chars}", "text")
    text_lang = language_param(params, "text_lang")
    if text_lang is None:
        raise bad_request("text_lang is required", "text_lang")
    media_type = text_param(params, "media_type") or "wav"
    if media_type not in MEDIA_TYPES:
        raise bad_request(f"media_type: {media_type} is not supported (one of {', '.join(MEDIA_TYPES)})",
                          "media_type")
    _check_ignored(params)
    seed = _int(params, "seed", -1)
    options = {
        "language": text_lang,
        "top_k": _int(params, "top_k", 15),
        "top_p": _float(params, "top_p", 1.0),
        "temperature": _float(params, "temperature", 1.0),
        "repetition_penalty": _float(params, "repetition_penalty", 1.35),
        "speed": _float(params, "speed_factor", 1.0),
        "seed": None if seed == -1 else seed,
    }
    return TtsParams(text, text_lang, text_param(params, "ref_audio_path"), text_param(params, "prompt_text"),
                     language_param(params, "prompt_lang"), text_param(params, "voice"), options, media_type,
                     streaming_mode(params))
