"""One loaded GPT per file: voices made from the same GPT file share the module, and so its batch of AR steps.

`shared_gpt` keeps each loaded GPT as long as some voice holds it, keyed by
the file (resolved path, size, modification time) and how it was loaded
(device, the GPT's dtype and int8 weights from the precision plan, and the
`AGENT_TTS_PACKED_LINEARS` and `AGENT_TTS_FP32_ATTENTION` settings). Two voices of one speaker with
different reference clips then decode in the same batched step
(`engine/scheduler.py`). A CPU GPT in fp32 or bf16 has its linears packed
for oneDNN where that measures faster on this machine (`packed_linear.py`);
an int8 GPT, the float weights its prefills use. A bf16 one attends in fp32
where that measures faster (`attention_dtype.py`).
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import torch

from agent_tts.models.attention_dtype import choose_attention_dtype, fp32_attention_setting
from agent_tts.models.checkpoints import load_gpt
from agent_tts.models.packed_linear import PREFILL_PROBE_ROWS, pack_gpt_if_faster, packed_linears_setting
from agent_tts.models.precision import PrecisionPlan
from agent_tts.models.quantization import quantize_linear_weights
from agent_tts.models.t2s import Text2SemanticModel

_LOADED: "weakref.WeakValueDictionary[tuple, Text2SemanticModel]" = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def shared_gpt(path: str | Path, plan: PrecisionPlan, device: torch.device) -> Text2SemanticModel:
    """The GPT of `path` on `device` in `plan`'s dtype (with int8 weights if it says so), loaded once."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, str(device), str(plan.gpt_dtype), plan.int8_weights,
               packed_linears_setting(), fp32_attention_setting())
    except OSError:
        key = None  # load_gpt reports the missing file
    with _LOCK:
        gpt = _LOADED.get(key) if key is not None else None
        if gpt is None:
            gpt = load_gpt(path).to(device).eval()
            if plan.int8_weights:
                pack_gpt_if_faster(quantize_linear_weights(gpt, plan.gpt_dtype), PREFILL_PROBE_ROWS)
            else:
                pack_gpt_if_faster(gpt.to(plan.gpt_dtype))
            choose_attention_dtype(gpt)
            if key is not None:
                _LOADED[key] = gpt
        return gpt
