"""Which dtype a CPU GPT's KV cache and attention use: the GPT's own, or fp32 where that measures faster.

An AR step attends over the whole KV cache of its rows in every layer. For a
bf16 GPT that would be bf16 attention, which reads half the bytes of fp32,
yet on a 2-core Zen 5 EPYC (AVX512-BF16, no AMX) with torch 2.13 torch's CPU
attention kernel took 4.8 ms for 24 layers of one row over 240 cached
positions in bf16 against 2.5 ms in fp32, and 27 against 17 ms for eight
rows (docs/precision.md). So `choose_attention_dtype` times one decode
attention at the GPT's head shape in both dtypes, once per process and shape,
and sets `Text2SemanticModel.attention_dtype` to fp32 where fp32 is faster:
the cache then holds fp32, the queries, keys and values are cast to it and
the attention's output back (a few hundred values a row). Only more precise
than bf16 attention. `AGENT_TTS_FP32_ATTENTION=auto|on|off` overrides the
measurement.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from agent_tts.models.load_time_choice import LoadTimeChoice
from agent_tts.models.t2s import Text2SemanticModel
from agent_tts.perf.machine_rates import best_seconds

FP32_ATTENTION_ENV = "AGENT_TTS_FP32_ATTENTION"
PROBE_ROWS = 8
PROBE_POSITIONS = 256
PROBE_LAYERS = 8  # at real size more cache than a 2-core slice of L3 holds, as a whole step's is

FP32_ATTENTION = LoadTimeChoice(FP32_ATTENTION_ENV)


def fp32_attention_setting() -> str:
    """`AGENT_TTS_FP32_ATTENTION`: auto (measure; the default), on or off."""
    return FP32_ATTENTION.setting()


def fp32_attention_is_faster(heads: int, head_dim: int, layers: int, dtype: torch.dtype) -> tuple[bool, float, float]:
    """Whether `layers` decode attentions (`PROBE_ROWS` rows, one query each over `PROBE_POSITIONS` cached
    positions, a mask as the step has) take less time in fp32 than in `dtype`, and the two times in seconds."""
    shape = (PROBE_ROWS, heads, PROBE_POSITIONS, head_dim)
    allowed = (torch.arange(PROBE_POSITIONS) <= torch.arange(PROBE_POSITIONS - PROBE_ROWS, PROBE_POSITIONS)
               .view(-1, 1, 1)).unsqueeze(1)
    seconds = []
    with torch.inference_mode():
        for kind in (dtype, torch.float32):
            query = torch.randn(PROBE_ROWS, heads, 1, head_dim, dtype=kind)
            keys = [torch.full(shape, 0.5, dtype=kind) for _ in range(layers)]
            values = [torch.full(shape, 0.25, dtype=kind) for _ in range(layers)]
            seconds.append(best_seconds(lambda: [F.scaled_dot_product_attention(query, k, v, allowed)
                                                 for k, v in zip(keys, values)]))
    return seconds[1] < seconds[0], seconds[0], seconds[1]


def choose_attention_dtype(gpt: Text2SemanticModel) -> torch.dtype:
    """Set `gpt.attention_dtype` to fp32 if `gpt` computes in a lower precision on the CPU and fp32 attention
    measures faster there (or `AGENT_TTS_FP32_ATTENTION=on`); returns the GPT's cache dtype."""
    dtype = gpt.compute_dtype
    if gpt.device.type != "cpu" or dtype == torch.float32:
        return gpt.cache_dtype
    config = gpt.config
    layers = min(config.num_layers, PROBE_LAYERS)
    key = (config.num_heads, config.head_dim, layers, dtype, torch.get_num_threads())
    faster = FP32_ATTENTION.decide(key, lambda: fp32_attention_is_faster(config.num_heads, config.head_dim, layers,
                                                                         dtype)[0])
    gpt.attention_dtype = torch.float32 if faster else None
    return gpt.cache_dtype
