"""Recompute a GPT-SoVITS reference fixture with agent-tts's own code and compare.

A fixture folder holds ``models/s1.ckpt``, ``models/s2.pth``, ``pretrained/``,
``ref/ref.wav`` + ``ref/ref.txt``, ``golden/*.npy`` and ``manifest.json`` (see
the fixture README). Everything is discovered from the folder: other model
sizes, sentences and clips work the same. Only the reference's protocol is
fixed here (greedy decoding with repetition penalty 1.35, noise-free decode).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
from agent_tts.errors import AgentTTSError
from agent_tts.models.checkpoints import load_gpt, load_sovits
from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.text.frontend import TextFrontend
from agent_tts.text.known_deviations import KNOWN_DEVIATIONS
from agent_tts.text.phonemes import Phonemes
from agent_tts.voice import prompt_waveform_16k, reference_spectrogram

RELATIVE_TOLERANCE = 1e-4
WAVEFORM_SNR_DB = 60.0
GREEDY_EXACT_PREFIX = 300
LOGIT_STEPS = 20
REFERENCE_SAMPLING = SamplingOptions(top_k=1, top_p=1.0, temperature=1.0, repetition_penalty=1.35)


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


class Fixture:
    """Paths and manifest of one fixture folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.golden_dir = self.root / "golden"
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file() or not self.golden_dir.is_dir():
            raise AgentTTSError(f"{self.root}: not a parity fixture (expected manifest.json and golden/)")
        self.manifest = json.loads(manifest_path.read_text())
        self.files = self.manifest.get("files", {})

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


def run_parity(root: str | Path, progress: Callable[[str], None] | None = None) -> Iterator[ParityResult]:
    """Yield one :class:`ParityResult` per golden item of the fixture at ``root``."""
    fixture = Fixture(root)
    say = progress or (lambda message: None)
    frontend = TextFrontend(version="v2")
    if fixture.has("frontend.jsonl"):
        say("text frontend rows")
        yield from check_frontend_rows(fixture, frontend)
    say("loading models")
    gpt = load_gpt(fixture.root / "models" / "s1.ckpt")
    sovits = load_sovits(fixture.root / "models" / "s2.pth")
    hubert = HubertFeatureExtractor.from_folder(fixture.root / "pretrained" / "chinese-hubert-base")
    bert = BertFeatureExtractor.from_folder(fixture.root / "pretrained" / "chinese-roberta-wwm-ext-large")

    reference = fixture.reference_text()
    ref_phonemes = frontend(reference["text"], reference.get("language", "auto"))
    if fixture.has("ref_phone_ids.npy"):
        yield compare_exact("ref_phone_ids", np.asarray(ref_phonemes.phone_ids), fixture.golden("ref_phone_ids.npy"))
    config = sovits.config
    ref_wav = fixture.root / "ref" / "ref.wav"

    with torch.inference_mode():
        say("reference clip")
        wav16k = prompt_waveform_16k(ref_wav, config.sampling_rate)
        if fixture.has("ref_wav16k_padded.npy"):
            yield compare_close("ref_wav16k_padded", wav16k, fixture.golden("ref_wav16k_padded.npy"))

        ssl = hubert(torch.from_numpy(wav16k)[None])
        if fixture.has("hubert_last_hidden.npy"):
            yield compare_close("hubert_last_hidden", ssl[0].numpy(), fixture.golden("hubert_last_hidden.npy"))

        prompt = sovits.extract_latent(ssl)[0, :1]
        if fixture.has("prompt_semantic.npy"):
            yield compare_exact("prompt_semantic", prompt[0].numpy(), fixture.golden("prompt_semantic.npy"))

        spec = reference_spectrogram(ref_wav, config)
        if fixture.has("refer_spec.npy"):
            yield compare_close("refer_spec", spec[0].numpy(), fixture.golden("refer_spec.npy"))

        ge = sovits.speaker_embedding(spec)
        if fixture.has("ge.npy"):
            yield compare_close("ge", ge[0].numpy(), fixture.golden("ge.npy"))

        say("BERT features (from the frontend's normalised text and word2ph)")
        for match in fixture.matching(r"bert_(\d+)\.npy"):
            phonemes = frontend(fixture.entry(match.string)["text"], "zh")
            features = phone_level_bert(bert, phonemes)
            yield compare_close(match.string.removesuffix(".npy"), features.numpy(), fixture.golden(match.string))

        for match in fixture.matching(r"ar(\d+)_all_phone_ids\.npy"):
            case = match.group(1)
            yield from _check_ar_case(fixture, case, frontend, ref_phonemes, bert, gpt, sovits, prompt, ge, say)


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


def _check_ar_case(fixture: Fixture, case: str, frontend: TextFrontend, ref_phonemes: Phonemes,
                   bert: BertFeatureExtractor, gpt, sovits, prompt: torch.Tensor, ge: torch.Tensor,
                   say: Callable[[str], None]) -> Iterator[ParityResult]:
    text = fixture.entry(f"ar{case}_all_phone_ids.npy").get("text")
    if text is None:
        raise AgentTTSError(f"{fixture.root}: manifest has no text for AR case {case}")
    target = frontend(text, "zh")
    ours_ids = np.asarray(ref_phonemes.phone_ids + target.phone_ids, dtype=np.int64)
    yield compare_exact(f"ar{case}_all_phone_ids", ours_ids, fixture.golden(f"ar{case}_all_phone_ids.npy"))
    phone_ids = torch.from_numpy(ours_ids)[None]
    all_bert = torch.cat([phone_level_bert(bert, ref_phonemes), phone_level_bert(bert, target)], dim=1)
    bert_name = f"ar{case}_all_bert.npy"
    if fixture.has(bert_name):
        yield compare_close(bert_name.removesuffix(".npy"), all_bert.numpy(), fixture.golden(bert_name))

    noeos_tokens: list[int] | None = None
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
        logits_name = f"ar{case}_{mode}_logits.npy"
        if fixture.has(logits_name):
            golden_logits = fixture.golden(logits_name)
            yield compare_close(logits_name.removesuffix(".npy"), np.stack(recorded[: len(golden_logits)]),
                                golden_logits)
        ours = np.asarray(tokens, dtype=np.int64)
        name = match.string.removesuffix(".npy")
        if mode == "greedy_noeos":
            yield compare_exact(name, ours, golden_tokens)
            noeos_tokens = tokens
        else:
            yield compare_prefix(name, ours, golden_tokens, GREEDY_EXACT_PREFIX)

    for match in fixture.matching(rf"decode{case}_speed(\d+)p(\d+)\.npy"):
        speed = float(f"{match.group(1)}.{match.group(2)}")
        if noeos_tokens is None:
            raise AgentTTSError(f"{fixture.root}: {match.string} needs the greedy_noeos tokens of case {case}")
        say(f"SoVITS decode case {case} speed {speed:g}")
        codes = torch.tensor(noeos_tokens)[None, None]
        text_ids = torch.tensor(target.phone_ids)[None]
        wav = sovits.decode(codes, text_ids, ge, noise_scale=0.0, speed=speed)[0, 0].numpy()
        yield compare_waveform(match.string.removesuffix(".npy"), wav, fixture.golden(match.string))
