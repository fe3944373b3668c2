"""Parity of the ONNX backend on a reference fixture: against torch in the same run and against the golden arrays.

Bars (the ONNX backend's): logits, BERT, SV embeddings and speaker vectors within
1e-3 of the max magnitude, greedy tokens identical for the first 60, waveforms
at SNR >= 40 dB, prompt codes exact. The AR cases take the fixture's own phone
ids and BERT features as input, so they measure the GPT graphs alone. Both
fixture layouts work; items are compared when their golden is there.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
from agent_tts.onnx.export import export_voice
from agent_tts.onnx.manifest import ExportManifest
from agent_tts.onnx.runtime import OnnxReferenceEncoders, OrtDevice
from agent_tts.parity import (LOGIT_STEPS, REFERENCE_SAMPLING, Fixture, ParityResult, compare_close, compare_exact,
                              compare_prefix, compare_waveform, logits_golden_name, teacher_forced_logits)
from agent_tts.reference import clip_speaker, mean_speaker_vector
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.voice import Voice, VoiceSpec

ONNX_RELATIVE_TOLERANCE = 1e-3
ONNX_MIN_SNR_DB = 40.0
ONNX_GREEDY_PREFIX = 60
# Enough greedy tokens to check the first 60 with margin; the whole 1500 would only add time.
GREEDY_TOKENS = 100


def fixture_voice_spec(fixture: Fixture) -> VoiceSpec:
    reference = fixture.reference_text()
    return VoiceSpec.with_pretrained("fixture", fixture.root / "models" / "s1.ckpt", fixture.root / "models" / "s2.pth",
                                     fixture.ref_wav, reference["text"], reference.get("language", "auto"),
                                     fixture.root / "pretrained")


def _ar_run(voice: Voice, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
            options: DecodeOptions) -> tuple[np.ndarray, np.ndarray]:
    recorded: list[np.ndarray] = []

    def record(step: int, logits: torch.Tensor) -> None:
        if step < LOGIT_STEPS:
            recorded.append(logits[0].float().numpy().copy())

    tokens = list(generate_semantic_tokens(voice.gpt, phone_ids, bert, prompt, options, on_logits=record))
    return np.asarray(tokens, dtype=np.int64), np.stack(recorded)


def run_onnx_parity(root: str | Path, export_dir: str | Path | None = None,
                    progress: Callable[[str], None] | None = None) -> Iterator[ParityResult]:
    """Export the fixture's voice (to `export_dir`, else a temporary folder) and yield one result per item."""
    fixture = Fixture(root)
    say = progress or (lambda message: None)
    spec = fixture_voice_spec(fixture)
    with tempfile.TemporaryDirectory(prefix="agent-tts-onnx-parity-") as scratch:
        folder = Path(export_dir) if export_dir is not None else Path(scratch) / "export"
        say(f"exporting the fixture voice to {folder}")
        export_voice(spec, folder)
        say("loading the voice on both backends")
        torch_voice = Voice.load(spec, "cpu")
        onnx_voice = Voice.load(spec, "cpu", backend="onnx", onnx_dir=folder)
        encoders = OnnxReferenceEncoders(ExportManifest.read(folder), OrtDevice())
        yield from _compare_voices(fixture, torch_voice, onnx_voice, encoders, say)


def _compare_voices(fixture: Fixture, torch_voice: Voice, onnx_voice: Voice, encoders: OnnxReferenceEncoders,
                    say: Callable[[str], None]) -> Iterator[ParityResult]:
    tolerance, min_snr = ONNX_RELATIVE_TOLERANCE, ONNX_MIN_SNR_DB
    prompt = torch_voice.prompt_codes
    yield compare_exact("onnx_prompt_codes_vs_torch", onnx_voice.prompt_codes.numpy(), prompt.numpy())
    if fixture.has("prompt_semantic.npy"):
        yield compare_exact("onnx_prompt_codes_vs_golden", onnx_voice.prompt_codes[0].numpy(),
                            fixture.golden("prompt_semantic.npy"))
    clips = [("", onnx_voice.reference.clips[0])]
    if fixture.auxiliary_clips():
        with torch.inference_mode():
            clips += [(prefix, clip_speaker(path, encoders, onnx_voice.sovits.config))
                      for prefix, path in fixture.auxiliary_clips().items()]
    for prefix, clip in clips:
        if clip.sv_embedding is not None and fixture.has(f"{prefix}sv_embedding.npy"):
            yield compare_close(f"onnx_{prefix}sv_embedding_vs_golden", clip.sv_embedding[0].numpy(),
                                fixture.golden(f"{prefix}sv_embedding.npy"), tolerance)
        if fixture.has(f"{prefix}ge.npy"):
            yield compare_close(f"onnx_{prefix}ge_vs_golden", clip.ge[0].numpy(), fixture.golden(f"{prefix}ge.npy"),
                                tolerance)
    for match in fixture.matching(r"bert_(\d+)\.npy"):
        phonemes = onnx_voice.frontend(fixture.entry(match.string)["text"], "zh")
        features = phone_level_bert(onnx_voice.bert, phonemes).numpy()
        yield compare_close(f"onnx_{match.string.removesuffix('.npy')}_vs_golden", features,
                            fixture.golden(match.string), tolerance)

    with torch.inference_mode():
        for match in fixture.matching(r"ar(\d+)_all_phone_ids\.npy"):
            case = match.group(1)
            phone_ids = torch.from_numpy(fixture.golden(match.string).astype(np.int64))[None]
            bert = torch.from_numpy(fixture.golden(f"ar{case}_all_bert.npy"))[None]
            tokens_by_mode: dict[str, np.ndarray] = {}
            for tokens_match in fixture.matching(rf"ar{case}_(greedy(?:_noeos)?)_tokens\.npy"):
                mode = tokens_match.group(1)
                golden_tokens = fixture.golden(tokens_match.string)
                options = DecodeOptions(REFERENCE_SAMPLING, max_tokens=len(golden_tokens), suppress_eos=True) \
                    if mode == "greedy_noeos" else DecodeOptions(REFERENCE_SAMPLING,
                                                                 max_tokens=min(GREEDY_TOKENS, len(golden_tokens)))
                say(f"AR case {case} {mode}")
                onnx_tokens, onnx_logits = _ar_run(onnx_voice, phone_ids, bert, prompt, options)
                torch_tokens, torch_logits = _ar_run(torch_voice, phone_ids, bert, prompt, options)
                name = f"onnx_ar{case}_{mode}"
                yield compare_close(f"{name}_logits_vs_torch", onnx_logits, torch_logits, tolerance, "torch")
                logits_name = logits_golden_name(fixture, case, mode)
                if logits_name is not None:
                    golden_logits = fixture.golden(f"{logits_name}.npy")
                    yield compare_close(f"{name}_logits_vs_golden", onnx_logits[: len(golden_logits)],
                                        golden_logits, tolerance)
                yield compare_prefix(f"{name}_tokens_vs_torch", onnx_tokens, torch_tokens, ONNX_GREEDY_PREFIX)
                yield compare_prefix(f"{name}_tokens_vs_golden", onnx_tokens, golden_tokens, ONNX_GREEDY_PREFIX)
                tokens_by_mode[mode] = onnx_tokens
                forced_name = f"ar{case}_teacher_forced_logits.npy"
                if mode == "greedy" and fixture.has(forced_name):
                    golden_forced = fixture.golden(forced_name)
                    forced = teacher_forced_logits(onnx_voice.gpt, phone_ids, bert, prompt, golden_tokens,
                                                   len(golden_forced))
                    yield compare_close(f"onnx_ar{case}_teacher_forced_logits_vs_golden", forced, golden_forced,
                                        tolerance)
            target_ids = phone_ids[:, len(onnx_voice.ref_phonemes.phone_ids):]
            decodes = [(wave.string, float(f"{wave.group(1)}.{wave.group(2)}"), onnx_voice.ge, torch_voice.ge)
                       for wave in fixture.matching(rf"decode{case}_speed(\d+)p(\d+)\.npy")]
            if fixture.has(f"decode{case}_tworefs_speed1p0.npy"):
                both = mean_speaker_vector([clip.ge for _, clip in clips])
                decodes.append((f"decode{case}_tworefs_speed1p0.npy", 1.0, both, None))
            for golden_name, speed, onnx_ge, torch_ge in decodes:
                say(f"SoVITS decode {golden_name.removesuffix('.npy')}")
                codes = torch.from_numpy(tokens_by_mode[fixture.decode_tokens_mode(golden_name, case)])[None, None]
                ours = onnx_voice.sovits.decode(codes, target_ids, onnx_ge, noise_scale=0.0, speed=speed)[0, 0]
                name = f"onnx_{golden_name.removesuffix('.npy')}"
                if torch_ge is not None:
                    theirs = torch_voice.sovits.decode(codes, target_ids, torch_ge, noise_scale=0.0, speed=speed)
                    yield compare_waveform(f"{name}_vs_torch", ours.numpy(), theirs[0, 0].numpy(), min_snr)
                yield compare_waveform(f"{name}_vs_golden", ours.numpy(), fixture.golden(golden_name), min_snr)
