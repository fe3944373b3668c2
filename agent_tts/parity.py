"""Recompute a GPT-SoVITS reference fixture with agent-tts's own code and compare.

A fixture folder holds ``models/s1.ckpt``, ``models/s2.pth``, ``pretrained/``
(with ``sv/`` for v2Pro), ``ref/ref.wav`` + ``ref/ref.txt``, ``golden/*.npy``
and a manifest: ``manifest.json`` at the root (the ``gsv-v2`` layout) or
``golden/manifest.json`` (``gsv-v2pro-tiny`` and later ones). Everything is
discovered from the folder and compared when its golden is there: other
model sizes, sentences, clips and versions work the same. Only the
reference's protocol is fixed here (greedy decoding with repetition penalty
1.35, noise-free decode, upstream's int16 output and streaming mode).

Each reference fact is recomputed by the function that makes it for a voice
(``reference.py``), stage by stage from our own previous stage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agent_tts.engine.chunked_decoder import ChunkedDecoder
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
from agent_tts.errors import AgentTTSError
from agent_tts.models.checkpoints import load_gpt, load_sovits, load_speaker_verification
from agent_tts.models.fbank import kaldi_fbank
from agent_tts.models.packed_linear import pack_bert_if_faster, pack_gpt_if_faster
from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.models.sovits import SoVITSModel
from agent_tts.models.speaker_verification import ERes2NetV2
from agent_tts.models.t2s import Text2SemanticModel
from agent_tts.pretrained_layout import SV_CHECKPOINT
from agent_tts.reference import (ClipSpeaker, mean_speaker_vector, prompt_waveform_16k, reference_spectrogram,
                                 reference_waveform, speaker_verification_input)
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.text.frontend import TextFrontend
from agent_tts.text.known_deviations import KNOWN_DEVIATIONS
from agent_tts.text.phonemes import Phonemes
from agent_tts.upstream_streaming import StreamCall, decode_streaming_call, fixed_chunk_stream, to_int16

RELATIVE_TOLERANCE = 1e-4
WAVEFORM_SNR_DB = 60.0
INT16_MAX_LSB = 2
GREEDY_EXACT_PREFIX = 300
LOGIT_STEPS = 20
REFERENCE_SAMPLING = SamplingOptions(top_k=1, top_p=1.0, temperature=1.0, repetition_penalty=1.35)
SV_STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4", "layer3_ds", "fuse34")
# upstream's TTS.run appends this much silence after each fragment
FRAGMENT_INTERVAL_S = 0.3


@dataclass(frozen=True)
class ParityResult:
    """One compared item: its error and the tolerance it was held to."""

    name: str
    passed: bool
    error: str
    tolerance: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:<40} {self.error:<40} tolerance: {self.tolerance}"


def relative_max_error(ours: np.ndarray, golden: np.ndarray) -> float:
    scale = float(np.abs(golden).max()) or 1.0
    return float(np.abs(ours.astype(np.float64) - golden.astype(np.float64)).max()) / scale


def snr_db(ours: np.ndarray, golden: np.ndarray) -> float:
    noise = float(np.sum((ours.astype(np.float64) - golden.astype(np.float64)) ** 2))
    signal = float(np.sum(golden.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def compare_close(name: str, ours: np.ndarray, golden: np.ndarray,
                  relative_tolerance: float = RELATIVE_TOLERANCE, against: str = "golden") -> ParityResult:
    tolerance = f"max|err| <= {relative_tolerance:g} x max|{against}|"
    if ours.shape != golden.shape:
        return ParityResult(name, False, f"shape {ours.shape} != {golden.shape}", tolerance)
    error = relative_max_error(ours, golden)
    return ParityResult(name, error <= relative_tolerance, f"rel max err {error:.2e}", tolerance)


def compare_exact(name: str, ours: np.ndarray, golden: np.ndarray) -> ParityResult:
    if ours.shape != golden.shape:
        return ParityResult(name, False, f"shape {ours.shape} != {golden.shape}", "exact")
    equal = int(np.sum(ours == golden))
    return ParityResult(name, equal == golden.size, f"{equal}/{golden.size} equal", "exact")


def compare_prefix(name: str, ours: np.ndarray, golden: np.ndarray, required: int) -> ParityResult:
    required = min(required, len(golden))
    n = min(len(ours), len(golden))
    mismatch = np.nonzero(ours[:n] != golden[:n])[0]
    same = int(mismatch[0]) if len(mismatch) else n
    tolerance = f"first {required} exact"
    return ParityResult(name, same >= required, f"first {same}/{len(golden)} identical", tolerance)


def compare_waveform(name: str, ours: np.ndarray, golden: np.ndarray,
                     min_snr_db: float = WAVEFORM_SNR_DB) -> ParityResult:
    tolerance = f"SNR >= {min_snr_db:g} dB"
    if ours.shape != golden.shape:
        return ParityResult(name, False, f"length {ours.shape} != {golden.shape}", tolerance)
    snr = snr_db(ours, golden)
    return ParityResult(name, snr >= min_snr_db, f"SNR {snr:.1f} dB", tolerance)


def compare_int16(name: str, ours: np.ndarray, golden: np.ndarray, max_lsb: int = INT16_MAX_LSB) -> ParityResult:
    tolerance = f"same length, max|err| <= {max_lsb} LSB"
    if ours.shape != golden.shape:
        return ParityResult(name, False, f"length {ours.shape} != {golden.shape}", tolerance)
    error = int(np.abs(ours.astype(np.int32) - golden.astype(np.int32)).max()) if golden.size else 0
    return ParityResult(name, error <= max_lsb, f"max err {error} LSB", tolerance)


class Fixture:
    """Paths and manifest of one fixture folder (manifest at the root, or in golden/)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.golden_dir = self.root / "golden"
        manifest_path = next((path for path in (self.root / "manifest.json", self.golden_dir / "manifest.json")
                              if path.is_file()), None)
        if manifest_path is None or not self.golden_dir.is_dir():
            raise AgentTTSError(f"{self.root}: not a parity fixture (expected golden/ and manifest.json at the root "
                                "or in golden/)")
        self.manifest = json.loads(manifest_path.read_text())
        self.files = self.manifest.get("files", {})
        self.ref_wav = self.root / "ref" / "ref.wav"
        self.sv_checkpoint = self.root / "pretrained" / SV_CHECKPOINT

    def golden(self, name: str) -> np.ndarray:
        return np.load(self.golden_dir / name)

    def has(self, name: str) -> bool:
        return (self.golden_dir / name).is_file()

    def entry(self, name: str) -> dict:
        return self.files.get(f"golden/{name}", {})

    def frontend_rows(self) -> list[dict]:
        lines = (self.golden_dir / "frontend.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def reference_text(self) -> dict:
        """The reference clip's text and language (``ref/ref.txt``: JSON, or plain text taken as auto)."""
        path = self.root / "ref" / "ref.txt"
        if not path.is_file():
            raise AgentTTSError(f"{self.root}: missing ref/ref.txt (the reference clip's text)")
        raw = path.read_text(encoding="utf-8").strip()
        try:
            record = json.loads(raw)
        except json.JSONDecodeError:
            return {"text": raw, "language": "auto"}
        if not isinstance(record, dict) or "text" not in record:
            raise AgentTTSError(f"{path}: expected a JSON object with 'text' and 'language'")
        return record

    def matching(self, pattern: str) -> list[re.Match]:
        regex = re.compile(pattern)
        found = (regex.fullmatch(p.name) for p in sorted(self.golden_dir.iterdir()))
        return [m for m in found if m]

    def auxiliary_clips(self) -> dict[str, Path]:
        """Extra reference clips by golden prefix (``aux48k_`` -> ``ref/ref_48k.wav``), named in their ``how``."""
        clips = {}
        for match in self.matching(r"(\w+_)refer_spec\.npy"):
            clip = re.search(r"(ref/[\w.-]+\.wav)", self.entry(match.string).get("how", ""))
            if clip is None:
                raise AgentTTSError(f"{self.root}: the manifest does not say which clip {match.string} comes from")
            clips[match.group(1)] = self.root / clip.group(1)
        return clips

    def case_text(self, case: str) -> tuple[str, str]:
        """An AR case's target text and language, from whichever golden of the case records them."""
        for name in (f"ar{case}_target_phone_ids.npy", f"ar{case}_all_phone_ids.npy"):
            entry = self.entry(name)
            if "text" in entry:
                return entry["text"], entry.get("language", "zh")
        raise AgentTTSError(f"{self.root}: manifest has no text for AR case {case}")

    def decode_tokens_mode(self, name: str, case: str) -> str:
        """Which AR tokens a decode golden was made from (``greedy`` or ``greedy_noeos``): the ones its ``how``
        names, else the case's fixed-length run when there is one."""
        found = re.search(r"codes=ar\d+_(greedy(?:_noeos)?)_tokens", self.entry(name).get("how", ""))
        if found:
            return found.group(1)
        return "greedy_noeos" if self.has(f"ar{case}_greedy_noeos_tokens.npy") else "greedy"


@dataclass
class FixtureModels:
    """The fixture's models, loaded by agent-tts's loaders, the GPT's and BERT's linears packed as a voice
    packs them (where that measures faster: `packed_linear.py`)."""

    gpt: Text2SemanticModel
    sovits: SoVITSModel
    hubert: HubertFeatureExtractor
    bert: BertFeatureExtractor
    sv_model: ERes2NetV2 | None

    @classmethod
    def load(cls, fixture: Fixture) -> "FixtureModels":
        gpt = load_gpt(fixture.root / "models" / "s1.ckpt").eval()
        pack_gpt_if_faster(gpt)
        sovits = load_sovits(fixture.root / "models" / "s2.pth")
        sv_model = None
        if sovits.config.uses_speaker_verification:
            sv_model = load_speaker_verification(fixture.sv_checkpoint, sovits.config.version)
        bert = BertFeatureExtractor.from_folder(fixture.root / "pretrained" / "chinese-roberta-wwm-ext-large")
        pack_bert_if_faster(bert)
        return cls(gpt, sovits,
                   HubertFeatureExtractor.from_folder(fixture.root / "pretrained" / "chinese-hubert-base"),
                   bert, sv_model)


class Checks:
    """Compares an array with its golden when the fixture has one; the results collect in ``results``."""

    def __init__(self, fixture: Fixture) -> None:
        self.fixture = fixture
        self.results: list[ParityResult] = []

    def _golden(self, name: str) -> np.ndarray | None:
        return self.fixture.golden(f"{name}.npy") if self.fixture.has(f"{name}.npy") else None

    def close(self, name: str, ours: torch.Tensor | np.ndarray) -> None:
        golden = self._golden(name)
        if golden is not None:
            self.results.append(compare_close(name, np.asarray(ours), golden))

    def exact(self, name: str, ours: torch.Tensor | np.ndarray) -> None:
        golden = self._golden(name)
        if golden is not None:
            self.results.append(compare_exact(name, np.asarray(ours), golden))

    def waveform(self, name: str, ours: torch.Tensor | np.ndarray) -> None:
        golden = self._golden(name)
        if golden is not None:
            self.results.append(compare_waveform(name, np.asarray(ours), golden))

    def int16(self, name: str, ours: np.ndarray) -> None:
        golden = self._golden(name)
        if golden is not None:
            self.results.append(compare_int16(name, ours, golden))

    def drain(self) -> Iterator[ParityResult]:
        results, self.results = self.results, []
        yield from results


def run_parity(root: str | Path, progress: Callable[[str], None] | None = None) -> Iterator[ParityResult]:
    """Yield one :class:`ParityResult` per golden item of the fixture at ``root``."""
    fixture = Fixture(root)
    say = progress or (lambda message: None)
    frontend = TextFrontend(version="v2")
    if fixture.has("frontend.jsonl"):
        say("text frontend rows")
        yield from check_frontend_rows(fixture, frontend)
    say("loading models")
    models = FixtureModels.load(fixture)
    checks = Checks(fixture)

    reference = fixture.reference_text()
    ref_phonemes = frontend(reference["text"], reference.get("language", "auto"))
    checks.exact("ref_phone_ids", np.asarray(ref_phonemes.phone_ids))
    yield from checks.drain()

    with torch.inference_mode():
        say("reference clip")
        prompt, main = check_reference_clip(checks, models, "", fixture.ref_wav)
        yield from checks.drain()
        clips = [main]
        for prefix, path in fixture.auxiliary_clips().items():
            say(f"auxiliary reference clip {path.name}")
            clips.append(check_reference_clip(checks, models, prefix, path)[1])
            yield from checks.drain()
        checks.close("ref_bert", phone_level_bert(models.bert, ref_phonemes))

        say("BERT features (from the frontend's normalised text and word2ph)")
        for match in fixture.matching(r"bert_(\d+)\.npy"):
            phonemes = frontend(fixture.entry(match.string)["text"], "zh")
            checks.close(match.string.removesuffix(".npy"), phone_level_bert(models.bert, phonemes))
        yield from checks.drain()

        for match in fixture.matching(r"ar(\d+)_all_phone_ids\.npy"):
            yield from _check_ar_case(checks, match.group(1), frontend, ref_phonemes, models, prompt, clips, say)


def check_reference_clip(checks: Checks, models: FixtureModels, prefix: str,
                         path: Path) -> tuple[torch.Tensor, ClipSpeaker]:
    """Every stage from one clip to its prompt codes and speaker vector, each against its golden if present."""
    sovits, rate = models.sovits, models.sovits.config.sampling_rate
    wav16k = prompt_waveform_16k(path, rate)
    checks.close(f"{prefix}ref_wav16k_padded", wav16k)
    ssl = models.hubert(torch.from_numpy(wav16k)[None])
    checks.close(f"{prefix}hubert_last_hidden", ssl[0])
    checks.close(f"{prefix}ssl_proj_out", sovits.ssl_proj(ssl)[0])
    prompt = sovits.extract_latent(ssl)[0, :1]
    checks.exact(f"{prefix}prompt_semantic", prompt[0])

    waveform = reference_waveform(path, rate)
    spectrogram = reference_spectrogram(waveform, sovits.config)
    checks.close(f"{prefix}refer_spec", spectrogram[0])
    sv = None
    if models.sv_model is not None:
        wav_sv = speaker_verification_input(waveform, rate, path)
        checks.close(f"{prefix}sv_wav16k", wav_sv)
        fbank = kaldi_fbank(wav_sv)
        checks.close(f"{prefix}sv_fbank", fbank)
        maps = models.sv_model.feature_maps(fbank[None])
        for stage in SV_STAGES:
            checks.close(f"{prefix}sv_{stage}_chmean", maps[stage][0].mean(dim=(1, 2)))
        sv = maps["fuse34"].flatten(start_dim=1, end_dim=2).mean(dim=-1)
        checks.close(f"{prefix}sv_embedding", sv[0])
        style = sovits.reference_style(spectrogram)
        checks.close(f"{prefix}ge_refenc", style[0])
        projected = sovits.sv_emb(sv)
        checks.close(f"{prefix}sv_proj", projected[0])
        checks.close(f"{prefix}ge_sum", (style + projected.unsqueeze(-1))[0])
    ge = sovits.speaker_embedding(spectrogram, sv)
    checks.close(f"{prefix}ge", ge[0])
    checks.close(f"{prefix}ge512", sovits.text_conditioning(ge)[0])
    return prompt, ClipSpeaker(ge, sv)


def check_frontend_rows(fixture: Fixture, frontend: TextFrontend) -> Iterator[ParityResult]:
    """One result per differing row (documented ones pass, marked), then the row tally."""
    identical = 0
    undocumented = 0
    rows = fixture.frontend_rows()
    for number, row in enumerate(rows):
        ours = frontend(row["text"], row["language"]).phone_ids
        if ours == row["phone_ids"]:
            identical += 1
            continue
        reason = KNOWN_DEVIATIONS.get(row["text"])
        undocumented += reason is None
        error = f"{row['language']} {row['text']!r}: " + (f"documented: {reason}" if reason else
                                                          f"ours {len(ours)} ids, reference {len(row['phone_ids'])}")
        yield ParityResult(f"frontend_row_{number}", reason is not None, error, "exact ids or documented")
    share = identical / len(rows) if rows else 0.0
    yield ParityResult("frontend_rows", undocumented == 0,
                       f"{identical}/{len(rows)} identical ({share:.1%}), {len(rows) - identical - undocumented} documented",
                       "every other row exact")


def logits_golden_name(fixture: Fixture, case: str, mode: str) -> str | None:
    """The per-step logits golden of an AR run: ``ar{c}_{mode}_logits`` (gsv-v2) or ``ar{c}_{mode}_step_logits``."""
    return next((name for name in (f"ar{case}_{mode}_logits", f"ar{case}_{mode}_step_logits")
                 if fixture.has(f"{name}.npy")), None)


def teacher_forced_logits(gpt, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                          tokens: np.ndarray, rows: int) -> np.ndarray:
    """Row k: the logits after prompt + the first k given tokens, from a fresh prefill (no cached steps)."""
    logits = []
    for k in range(rows):
        extended = torch.cat([prompt, torch.from_numpy(tokens[:k].astype(np.int64))[None].to(prompt)], dim=1)
        length = phone_ids.shape[1] + extended.shape[1]
        kv = gpt.new_cache(length).row_view(0, length)
        logits.append(gpt.prefill(phone_ids, bert, extended, kv)[0].float().numpy())
    return np.stack(logits)


def _check_ar_case(checks: Checks, case: str, frontend: TextFrontend, ref_phonemes: Phonemes,
                   models: FixtureModels, prompt: torch.Tensor, clips: list[ClipSpeaker],
                   say: Callable[[str], None]) -> Iterator[ParityResult]:
    fixture, gpt, sovits = checks.fixture, models.gpt, models.sovits
    text, language = fixture.case_text(case)
    target = frontend(text, language)
    checks.exact(f"ar{case}_target_phone_ids", np.asarray(target.phone_ids, dtype=np.int64))
    ours_ids = np.asarray(ref_phonemes.phone_ids + target.phone_ids, dtype=np.int64)
    checks.exact(f"ar{case}_all_phone_ids", ours_ids)
    phone_ids = torch.from_numpy(ours_ids)[None]
    all_bert = torch.cat([phone_level_bert(models.bert, ref_phonemes), phone_level_bert(models.bert, target)], dim=1)
    checks.close(f"ar{case}_all_bert", all_bert)
    yield from checks.drain()

    tokens_by_mode: dict[str, list[int]] = {}
    for match in fixture.matching(rf"ar{case}_(greedy(?:_noeos)?)_tokens\.npy"):
        mode = match.group(1)
        golden_tokens = fixture.golden(match.string)
        say(f"AR case {case} {mode}: {len(golden_tokens)} tokens")
        recorded: list[np.ndarray] = []

        def record(step: int, logits: torch.Tensor) -> None:
            if step < LOGIT_STEPS:
                recorded.append(logits[0].float().numpy().copy())

        options = DecodeOptions(sampling=REFERENCE_SAMPLING, max_tokens=len(golden_tokens),
                                suppress_eos=mode == "greedy_noeos")
        tokens = list(generate_semantic_tokens(gpt, phone_ids, all_bert[None], prompt, options, on_logits=record))
        logits_name = logits_golden_name(fixture, case, mode)
        if logits_name is not None:
            golden_logits = fixture.golden(f"{logits_name}.npy")
            yield compare_close(logits_name, np.stack(recorded[: len(golden_logits)]), golden_logits)
        ours = np.asarray(tokens, dtype=np.int64)
        name = match.string.removesuffix(".npy")
        yield compare_exact(name, ours, golden_tokens) if mode == "greedy_noeos" else \
            compare_prefix(name, ours, golden_tokens, GREEDY_EXACT_PREFIX)
        tokens_by_mode[mode] = tokens
        forced_name = f"ar{case}_teacher_forced_logits.npy"
        if mode == "greedy" and fixture.has(forced_name):
            say(f"AR case {case}: teacher-forced logits (one prefill per row)")
            golden_forced = fixture.golden(forced_name)
            yield compare_close(forced_name.removesuffix(".npy"), teacher_forced_logits(
                gpt, phone_ids, all_bert[None], prompt, golden_tokens, len(golden_forced)), golden_forced)

    text_ids = torch.tensor(target.phone_ids)[None]
    ge = clips[0].ge

    def case_codes(golden_name: str) -> torch.Tensor:
        mode = fixture.decode_tokens_mode(golden_name, case)
        if mode not in tokens_by_mode:
            raise AgentTTSError(f"{fixture.root}: {golden_name} needs the {mode} tokens of case {case}")
        return torch.tensor(tokens_by_mode[mode])[None, None]

    for match in fixture.matching(rf"decode{case}_speed(\d+)p(\d+)\.npy"):
        speed = float(f"{match.group(1)}.{match.group(2)}")
        say(f"SoVITS decode case {case} speed {speed:g}")
        codes = case_codes(match.string)
        checks.waveform(match.string.removesuffix(".npy"),
                        sovits.decode(codes, text_ids, ge, noise_scale=0.0, speed=speed)[0, 0])
        if speed == 1.0:
            hidden = sovits.content(codes, text_ids, ge)
            mean, logs, mask = sovits.enc_p.project(hidden)
            checks.close(f"decode{case}_m_p", mean[0])
            checks.close(f"decode{case}_logs_p", logs[0])
            checks.close(f"decode{case}_z", sovits.flow.reverse(mean, mask, ge)[0])
    both = f"decode{case}_tworefs_speed1p0.npy"
    if fixture.has(both):
        say(f"SoVITS decode case {case} with {len(clips)} references")
        checks.waveform(both.removesuffix(".npy"), sovits.decode(
            case_codes(both), text_ids, mean_speaker_vector([clip.ge for clip in clips]), noise_scale=0.0)[0, 0])
    yield from checks.drain()

    run_name = f"run{case}_int16.npy"
    if fixture.has(run_name) and "greedy" in tokens_by_mode:
        say(f"upstream's whole-utterance output, case {case}")
        kept = int(fixture.entry(f"ar{case}_greedy_tokens.npy").get("returned_idx", len(tokens_by_mode["greedy"])))
        codes = torch.tensor(tokens_by_mode["greedy"][-kept:])[None, None]
        audio = sovits.decode(codes, text_ids, ge, noise_scale=0.0)[0, 0].numpy()
        checks.int16(run_name.removesuffix(".npy"), np.concatenate([
            to_int16(audio), np.zeros(int(sovits.config.sampling_rate * FRAGMENT_INTERVAL_S), np.int16)]))
    if fixture.matching(rf"streamfixed{case}_call\d+_audio\.npy") and "greedy" in tokens_by_mode:
        yield from _check_streaming(checks, case, sovits, torch.tensor(tokens_by_mode["greedy"]), text_ids, ge)
    yield from checks.drain()


def _check_streaming(checks: Checks, case: str, sovits: SoVITSModel, tokens: torch.Tensor, text_ids: torch.Tensor,
                     ge: torch.Tensor) -> Iterator[ParityResult]:
    """Upstream's fixed-chunk streaming calls and output, and our streaming engine beside it."""
    fixture = checks.fixture
    names = [match.string for match in fixture.matching(rf"streamfixed{case}_call(\d+)_audio\.npy")]
    names.sort(key=lambda name: int(re.search(r"call(\d+)", name).group(1)))
    calls = [StreamCall(int(fixture.entry(name)["n_tokens_in"]), fixture.entry(name).get("result_length"),
                        fixture.entry(name).get("overlap_frames")) for name in names]
    previous, audio = None, []
    for name, call in zip(names, calls):
        wav, previous = decode_streaming_call(sovits, tokens, text_ids, ge, call, previous)
        audio.append(wav.numpy())
        checks.waveform(name.removesuffix(".npy"), audio[-1])
    run_name = f"streamfixed{case}_run_int16.npy"
    if fixture.has(run_name):
        overlap = re.search(r"overlap_length=(\d+)", fixture.entry(run_name).get("how", ""))
        samples_per_token = 2 * sovits.config.samples_per_frame
        chunks = fixed_chunk_stream(audio, calls, int(overlap.group(1)) if overlap else 2, samples_per_token)
        silence = np.zeros(int(sovits.config.sampling_rate * FRAGMENT_INTERVAL_S), np.int16)
        checks.int16(run_name.removesuffix(".npy"), np.concatenate([*(to_int16(c) for c in chunks), silence]))
    whole_name = f"decode{case}_speed1p0.npy"
    if fixture.has(whole_name):
        checks.results.append(compare_streaming(f"stream{case}_engine_vs_upstream_streaming", sovits, tokens,
                                                text_ids, ge, audio, calls, fixture.golden(whole_name)))
    yield from checks.drain()


def compare_streaming(name: str, sovits: SoVITSModel, tokens: torch.Tensor, text_ids: torch.Tensor, ge: torch.Tensor,
                      upstream_calls: list[np.ndarray], calls: list[StreamCall], whole: np.ndarray) -> ParityResult:
    """Our engine's streamed audio (``ChunkedDecoder``, its default plan) and upstream's fixed-chunk calls, each
    against the whole-utterance decode; ours must be at least as close. Upstream's stream is taken as each call's
    new tokens' audio (before its SOLA join shifts the chunks), so both line up with the whole decode sample for
    sample."""
    decoder = ChunkedDecoder(sovits, text_ids, ge)
    ours = np.concatenate([*decoder.push(tokens.tolist()), decoder.finish()])
    samples_per_token = len(whole) // len(tokens)
    pieces, done = [], 0
    for audio, call in zip(upstream_calls, calls):
        pieces.append(audio[len(audio) - (call.tokens_in - done) * samples_per_token:])
        done = call.tokens_in
    upstream = np.concatenate(pieces)
    tolerance = "ours >= upstream's streaming (SNR vs the whole-utterance decode)"
    if ours.shape != whole.shape or upstream.shape != whole.shape:
        return ParityResult(name, False, f"lengths {ours.shape}, {upstream.shape} vs {whole.shape}", tolerance)
    ours_snr, upstream_snr = snr_db(ours, whole), snr_db(upstream, whole)
    return ParityResult(name, ours_snr >= upstream_snr, f"SNR ours {ours_snr:.1f} dB, upstream {upstream_snr:.1f} dB",
                        tolerance)
