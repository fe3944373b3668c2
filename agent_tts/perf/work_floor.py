"""The work one unit of speech costs a voice, and the least time that work can take on a machine.

`count_work` runs the torch models once on a unit's text and counts, with
torch's FLOP counter, the matrix-product, attention and convolution FLOPs of
every part of the first audio (BERT up to the layer the GPT reads, the GPT
prefill, one AR step, the SoVITS decode of the first window) and of steady
speech (a streaming window, a whole-utterance decode); elementwise work is
not counted. It also counts the bytes each part must read at least once: its
weights, and for an AR step the keys and values it attends to.

`time_floor` takes, part by part, the larger of FLOPs over the machine's best
measured matrix-product rate and bytes over its best measured read bandwidth
(`MachineRates`), at a precision (`FloorPrecision`): bf16 halves the bytes of
weights and cache and runs at the bf16 rate; int8 reads one byte per GPT
weight in an AR step (the scales are a rounding error) and the float weights
in a prefill, with bf16 activations where the CPU has native bf16. The first
audio is a chain (BERT, prefill, each AR step, the decode that needs their
tokens), so its floor is their sum: no implementation of these models at
this precision, ours or another, can be faster on that machine, whatever its
kernels. For steady speech the sum is
the floor of an engine that runs one part at a time; one that overlapped the
memory-bound AR steps with the compute-bound decoding perfectly would be
bound by the larger of the two (`rtf_overlapped`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from agent_tts.engine.chunked_decoder import ChunkPlan
from agent_tts.models.packed_linear import weight_megabytes
from agent_tts.perf.machine_rates import MachineRates
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.voice import Voice

TOKENS_PER_SECOND = 25
WHOLE_DECODE_TOKENS = 250  # 10 s decoded at once: the per-second cost of decoding a whole utterance


@dataclass(frozen=True)
class UnitWork:
    """FLOPs (in GFLOP) and bytes of one unit's parts, for the plan's chunk sizes."""

    text_phones: int
    prefill_positions: int
    bert_gflop: float
    bert_mbytes: float               # weights of the layers the GPT reads from (0 when the unit has no Chinese)
    prefill_gflop: float
    gpt_mbytes: float                # weights of the GPT's layers and head
    step_gflop: float
    step_mbytes: float               # the GPT's weights + the keys/values one step attends to
    step_cache_mbytes: float         # of which the keys/values
    sovits_mbytes: float             # weights of the decoding modules (text encoder, flow, generator)
    first_window_tokens: int         # tokens decoded for the first chunk (first chunk + holdback)
    first_window_gflop: float
    one_token_window_gflop: float    # the first window if the first chunk were a single token
    chunk_window_tokens: int         # a full-size later chunk's window: left context + max_tokens + holdback
    chunk_window_gflop: float
    whole_window_tokens: int         # a whole-utterance decode (WHOLE_DECODE_TOKENS), for its cost per second
    whole_window_gflop: float
    chunk_plan: ChunkPlan

    def as_dict(self) -> dict:
        return asdict(self)


def _fused_cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _packed_linear_flops(input_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    rows = math.prod(input_shape[:-1])
    return 2 * rows * input_shape[-1] * weight_shape[0]


# The counter knows the CUDA attention kernels but not the fused CPU one that scaled_dot_product_attention runs
# here, nor oneDNN's linear over packed weights (models/packed_linear.py).
_EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _fused_cpu_attention_flops,
                        torch.ops.mkldnn._linear_pointwise: _packed_linear_flops}


def _counted(work) -> tuple[FlopCounterMode, object]:
    with FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter:
        result = work()
    return counter, result


def _bert_mbytes(voice: Voice) -> float:
    """The weights a BERT pass reads: its layers' (the embeddings are looked up, a few rows a pass)."""
    return weight_megabytes(voice.bert.model.encoder.layer)


def _decode_gflop(voice: Voice, phone_ids: torch.Tensor, tokens: int) -> float:
    codes = torch.zeros(1, 1, tokens, dtype=torch.long)
    counter, _ = _counted(lambda: voice.sovits.decode(codes, phone_ids, voice.ge, noise_scale=0.0, speed=1.0))
    return counter.get_total_flops() / 1e9


@torch.inference_mode()
def count_work(voice: Voice, text: str, plan: ChunkPlan = ChunkPlan(), language: str = "auto") -> UnitWork:
    """Count the work of speaking `text` as one unit with `voice` (a torch-backend voice on the CPU)."""
    if voice.backend != "torch":
        raise ValueError("count_work needs the torch backend (it counts the torch models' operations)")
    phonemes = voice.frontend(text, language)
    gpt = voice.gpt
    bert_counter, target_bert = _counted(lambda: phone_level_bert(voice.bert, phonemes))
    phone_ids = torch.tensor([voice.ref_phonemes.phone_ids + phonemes.phone_ids])
    bert = torch.cat([voice.ref_bert, target_bert], dim=1)[None]
    prompt = voice.prompt_codes
    positions = phone_ids.shape[1] + prompt.shape[1]
    cache = gpt.new_cache(positions + 1)
    prefill, _ = _counted(lambda: gpt.prefill(phone_ids, bert, prompt, cache.row_view(0, positions)))
    one = torch.ones(1, dtype=torch.long)
    step, _ = _counted(lambda: gpt.step(torch.zeros(1, 1, dtype=torch.long), one * prompt.shape[1],
                                        one * positions, cache.view(1, positions + 1)))
    gpt_mbytes = weight_megabytes([gpt.h, gpt.ar_predict_layer])
    value_bytes = torch.empty(0, dtype=gpt.cache_dtype).element_size()
    cache_mbytes = 2 * gpt.config.num_layers * (positions + 1) * gpt.config.hidden_dim * value_bytes / 1e6
    speaks_chinese = [part for part in phonemes.parts or [phonemes] if part.language == "zh" and part.phones]
    target_phones = torch.tensor([phonemes.phone_ids])
    first_window = plan.first_tokens + plan.holdback
    chunk_window = plan.left_context + plan.max_tokens + plan.holdback
    return UnitWork(
        text_phones=len(phonemes.phone_ids),
        prefill_positions=positions,
        bert_gflop=bert_counter.get_total_flops() / 1e9,
        bert_mbytes=_bert_mbytes(voice) * len(speaks_chinese),
        prefill_gflop=prefill.get_total_flops() / 1e9,
        gpt_mbytes=gpt_mbytes,
        step_gflop=step.get_total_flops() / 1e9,
        step_mbytes=gpt_mbytes + cache_mbytes,
        step_cache_mbytes=cache_mbytes,
        sovits_mbytes=weight_megabytes([voice.sovits.enc_p, voice.sovits.flow, voice.sovits.dec]),
        first_window_tokens=first_window,
        first_window_gflop=_decode_gflop(voice, target_phones, first_window),
        one_token_window_gflop=_decode_gflop(voice, target_phones, 1 + plan.holdback),
        chunk_window_tokens=chunk_window,
        chunk_window_gflop=_decode_gflop(voice, target_phones, chunk_window),
        whole_window_tokens=WHOLE_DECODE_TOKENS,
        whole_window_gflop=_decode_gflop(voice, target_phones, WHOLE_DECODE_TOKENS),
        chunk_plan=plan,
    )


@dataclass(frozen=True)
class FloorPrecision:
    """Bytes per weight and per cached value of each part at a precision, and whether it runs at the bf16 rate.

    The work is counted on an fp32 voice (4 bytes each); these rescale it.
    """

    name: str
    gpt_weight_bytes: float  # read per weight by an AR step
    prefill_weight_bytes: float
    bert_weight_bytes: float
    sovits_weight_bytes: float
    cache_bytes: float
    bf16_arithmetic: bool


FP32_FLOOR = FloorPrecision("fp32", 4, 4, 4, 4, 4, False)


def floor_precision(name: str, native_bf16: bool) -> FloorPrecision:
    """fp32, bf16 or int8 as `Voice.load` runs it on a CPU with or without native bf16 (models/precision.py)."""
    if name == "fp32":
        return FP32_FLOOR
    if name == "bf16":
        return FloorPrecision("bf16", 2, 2, 2, 2, 2, True)
    if name == "int8":  # int8 weights for the AR step only: its prefill, BERT and SoVITS in the activations' dtype
        activations = 2 if native_bf16 else 4
        return FloorPrecision("int8", 1, activations, activations, activations, activations, native_bf16)
    raise ValueError(f"no floor for precision {name!r}")


@dataclass(frozen=True)
class TimeFloor:
    """The least time each part can take at a machine's best rates (ms), and the least real-time factors."""

    precision: str
    step_mbytes: float  # read per AR step at this precision
    bert_ms: float
    prefill_ms: float
    step_ms: float
    first_chunk_steps: int
    first_decode_ms: float
    first_audio_ms: float
    first_audio_one_token_chunk_ms: float
    rtf_streaming: float
    rtf_whole: float
    # If the memory-bound AR steps and the compute-bound decoding of earlier tokens ran fully at once: the larger of
    # the two per second of audio (whole decoding). Optimistic: a core streaming weights is not free to convolve.
    rtf_overlapped: float

    def as_dict(self) -> dict:
        return asdict(self)


def time_floor(work: UnitWork, rates: MachineRates, precision: FloorPrecision = FP32_FLOOR) -> TimeFloor:
    """Divide `work` by `rates`, each part bounded by its arithmetic or its memory traffic, whichever is slower."""
    gemm = rates.gemm_rate(precision.bf16_arithmetic)

    def floor_ms(gflop: float, mbytes: float) -> float:
        return max(gflop / gemm, mbytes / 1000 / rates.read_gb_per_s) * 1000

    def decode_ms(gflop: float) -> float:
        return floor_ms(gflop, work.sovits_mbytes * precision.sovits_weight_bytes / 4)

    step_mbytes = ((work.step_mbytes - work.step_cache_mbytes) * precision.gpt_weight_bytes
                   + work.step_cache_mbytes * precision.cache_bytes) / 4
    step_ms = floor_ms(work.step_gflop, step_mbytes)
    # The prefill yields the first token; each further token of the first window is one AR step.
    first_steps = work.first_window_tokens - 1
    one_token_steps = work.chunk_plan.holdback
    bert_ms = floor_ms(work.bert_gflop, work.bert_mbytes * precision.bert_weight_bytes / 4)
    prefill_ms = floor_ms(work.prefill_gflop, work.gpt_mbytes * precision.prefill_weight_bytes / 4)
    first_decode_ms = decode_ms(work.first_window_gflop)
    ar_s_per_audio_s = step_ms / 1000 * TOKENS_PER_SECOND
    chunk_seconds = work.chunk_plan.max_tokens / TOKENS_PER_SECOND
    whole_seconds = work.whole_window_tokens / TOKENS_PER_SECOND
    return TimeFloor(
        precision=precision.name,
        step_mbytes=step_mbytes,
        bert_ms=bert_ms,
        prefill_ms=prefill_ms,
        step_ms=step_ms,
        first_chunk_steps=first_steps,
        first_decode_ms=first_decode_ms,
        first_audio_ms=bert_ms + prefill_ms + first_steps * step_ms + first_decode_ms,
        first_audio_one_token_chunk_ms=bert_ms + prefill_ms + one_token_steps * step_ms
        + decode_ms(work.one_token_window_gflop),
        rtf_streaming=ar_s_per_audio_s + decode_ms(work.chunk_window_gflop) / 1000 / chunk_seconds,
        rtf_whole=ar_s_per_audio_s + decode_ms(work.whole_window_gflop) / 1000 / whole_seconds,
        rtf_overlapped=max(ar_s_per_audio_s, decode_ms(work.whole_window_gflop) / 1000 / whole_seconds),
    )
