"""A reduced precision against fp32 on a parity fixture: the accuracy bars bf16 and int8 are held to.

Both voices are loaded the way users load them (`Voice.load(precision=...)`),
over the fixture's models and clip. For each AR case (the fixture's sentence,
its reference phones, the voice's BERT features of the sentence, the prompt
codes) and the reference's greedy protocol:

* logits: the first `LOGIT_STEPS` steps' logits, both models fed fp32's tokens
  (so an early flip cannot make later steps incomparable), within
  `LOGIT_TOLERANCE` of fp32's largest magnitude;
* tokens: with fp32's history fed, the reduced precision's greedy choice is
  fp32's at each of the first `TOKEN_STEPS` steps, except where fp32's own
  top two (after the repetition penalty) are closer than the logit error just
  measured can move them: a near-tie, which any rounding can flip. The
  free-running sequences' common prefix is reported beside it. The fixture's
  tiny random GPT has such ties (top-two margins of 0.01-0.2% of the logit
  range within 30 steps), so free-running identity over 30 tokens is luck
  there, for any precision other than fp32 (docs/precision.md);
* waveform: the fixture's `greedy_noeos` tokens decoded by both SoVITS
  models (noise-free), SNR at least `WAVEFORM_SNR_DB`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from agent_tts.engine.sampling import apply_repetition_penalty
from agent_tts.engine.t2s_decoding import DecodeOptions, generate_semantic_tokens
from agent_tts.models.precision import PrecisionPlan
from agent_tts.parity import REFERENCE_SAMPLING, Fixture, ParityResult, snr_db
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.voice import Voice, VoiceSpec

LOGIT_TOLERANCE = 0.02
TOKEN_STEPS = 30
LOGIT_STEPS = 40
WAVEFORM_SNR_DB = 25.0
EOS_MASKED_STEPS = 11


def fixture_voice_spec(root: str | Path) -> VoiceSpec:
    """A voice over a parity fixture's models, reference clip and text, and pretrained folders."""
    fixture = Fixture(root)
    reference = fixture.reference_text()
    return VoiceSpec.with_pretrained("fixture", fixture.root / "models" / "s1.ckpt",
                                     fixture.root / "models" / "s2.pth", fixture.root / "ref" / "ref.wav",
                                     reference["text"], reference.get("language", "auto"),
                                     fixture.root / "pretrained")


def _ar_inputs(voice: Voice, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    target = voice.frontend(text, "zh")
    phone_ids = torch.tensor([voice.ref_phonemes.phone_ids + target.phone_ids])
    bert = torch.cat([voice.ref_bert.float(), phone_level_bert(voice.bert, target)], dim=1)[None]
    return phone_ids, bert


@torch.inference_mode()
def _teacher_forced_logits(voice: Voice, phone_ids: torch.Tensor, bert: torch.Tensor,
                           tokens: list[int]) -> np.ndarray:
    """Raw logits [len(tokens), V] of the prefill and the steps fed `tokens[:-1]`."""
    gpt, prompt = voice.gpt, voice.prompt_codes
    text, prompt_length = phone_ids.shape[1], prompt.shape[1]
    cache = gpt.new_cache(text + prompt_length + len(tokens))
    logits = [gpt.prefill(phone_ids, bert.to(gpt.compute_dtype), prompt, cache.row_view(0, text + prompt_length))]
    for step, token in enumerate(tokens[:-1]):
        slot = text + prompt_length + step
        logits.append(gpt.step(torch.tensor([[token]]), torch.tensor([prompt_length + step]), torch.tensor([slot]),
                               cache.view(1, slot + 1)))
    return torch.cat(logits).float().numpy()


def _greedy_choices(logits: np.ndarray, prompt: torch.Tensor, history: list[int],
                    eos: int) -> tuple[list[int], list[float]]:
    """Per step, the greedy token after the repetition penalty (EOS masked early) and fp32's top-two margin."""
    seen = torch.zeros(1, logits.shape[1], dtype=torch.bool)
    seen[0, prompt[0]] = True
    penalty = torch.tensor([[REFERENCE_SAMPLING.repetition_penalty]])
    choices, margins = [], []
    for step, row in enumerate(logits):
        penalised = apply_repetition_penalty(torch.from_numpy(row)[None], seen, penalty)[0]
        if step < EOS_MASKED_STEPS:
            penalised[eos] = -float("inf")
        top = torch.topk(penalised, 2)
        choices.append(int(top.indices[0]))
        margins.append(float(top.values[0] - top.values[1]))
        seen[0, history[step]] = True
    return choices, margins


def _free_running(voice: Voice, phone_ids: torch.Tensor, bert: torch.Tensor, count: int) -> list[int]:
    options = DecodeOptions(sampling=REFERENCE_SAMPLING, max_tokens=count, suppress_eos=True)
    return list(generate_semantic_tokens(voice.gpt, phone_ids, bert.to(voice.gpt.compute_dtype), voice.prompt_codes,
                                         options))


def check_precision(root: str | Path, precision: str | PrecisionPlan) -> Iterator[ParityResult]:
    """Yield the logits, tokens and waveform results of `precision` (a name, or a plan as `Voice.load` takes it)
    against fp32 on the fixture at `root`."""
    fixture = Fixture(root)
    spec = fixture_voice_spec(root)
    exact = Voice.load(spec, "cpu", precision="fp32")
    reduced = Voice.load(spec, "cpu", precision=precision)
    name = reduced.precision.name
    eos = exact.gpt.config.eos
    for match in fixture.matching(r"ar(\d+)_all_phone_ids\.npy"):
        case = match.group(1)
        text = fixture.entry(match.string)["text"]
        phone_ids, exact_bert = _ar_inputs(exact, text)
        _, reduced_bert = _ar_inputs(reduced, text)
        tokens = _free_running(exact, phone_ids, exact_bert, LOGIT_STEPS)
        exact_logits = _teacher_forced_logits(exact, phone_ids, exact_bert, tokens)
        reduced_logits = _teacher_forced_logits(reduced, phone_ids, reduced_bert, tokens)
        scale = float(np.abs(exact_logits).max()) or 1.0
        step_errors = np.abs(reduced_logits - exact_logits).max(axis=1)
        error = float(step_errors.max()) / scale
        yield ParityResult(f"ar{case}_{name}_logits", error <= LOGIT_TOLERANCE,
                           f"max error {error:.2%} of max magnitude over {LOGIT_STEPS} steps",
                           f"<= {LOGIT_TOLERANCE:.0%}")

        exact_choice, margins = _greedy_choices(exact_logits, exact.prompt_codes, tokens, eos)
        reduced_choice, _ = _greedy_choices(reduced_logits, exact.prompt_codes, tokens, eos)
        flipped = [step for step in range(TOKEN_STEPS) if reduced_choice[step] != exact_choice[step]]
        # A flip is a near-tie when fp32's top two are closer than the two logits' errors can move them apart
        # (the penalty scales a negative logit, and its error, by up to 1.35).
        bound = 2 * REFERENCE_SAMPLING.repetition_penalty
        unexplained = [step for step in flipped if margins[step] >= bound * step_errors[step]]
        free = _free_running(reduced, phone_ids, reduced_bert, TOKEN_STEPS)
        common = next((step for step, (a, b) in enumerate(zip(free, tokens)) if a != b), TOKEN_STEPS)
        yield ParityResult(f"ar{case}_{name}_greedy_tokens", not unexplained,
                           f"{TOKEN_STEPS - len(flipped)}/{TOKEN_STEPS} choices as fp32, flips at {flipped} "
                           f"({len(unexplained)} not near-ties); free-running: first {common} identical",
                           "every flip a near-tie")

        golden_tokens = f"ar{case}_greedy_noeos_tokens.npy"
        if fixture.has(golden_tokens):
            codes = torch.from_numpy(fixture.golden(golden_tokens))[None, None]
            text_ids = torch.tensor([exact.frontend(text, "zh").phone_ids])
            with torch.inference_mode():
                waves = [voice.sovits.decode(codes, text_ids, voice.ge, noise_scale=0.0)[0, 0].float().numpy()
                         for voice in (exact, reduced)]
            snr = snr_db(waves[1], waves[0])
            yield ParityResult(f"decode{case}_{name}_waveform", snr >= WAVEFORM_SNR_DB, f"SNR {snr:.1f} dB",
                               f">= {WAVEFORM_SNR_DB:g} dB")
