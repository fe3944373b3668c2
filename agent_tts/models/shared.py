"""One loaded GPT per file: voices made from the same GPT file share the module, and so its batch of AR steps.

`shared_gpt` keeps each loaded GPT as long as some voice holds it, keyed by
the file (resolved path, size, modification time) and how it was loaded
(dtype, device, int8). Two voices of one speaker with different reference
clips then decode in the same batched step (`engine/scheduler.py`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path

import torch

from agent_tts.models.checkpoints import load_gpt
from agent_tts.models.t2s import Text2SemanticModel

_LOADED: "weakref.WeakValueDictionary[tuple, Text2SemanticModel]" = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def shared_gpt(path: str | Path, dtype: torch.dtype, device: torch.device,
               transform: Callable[[Text2SemanticModel], Text2SemanticModel] | None = None,
               transform_name: str = "") -> Text2SemanticModel:
    """The GPT of `path` loaded with `dtype` on `device` (then `transform`ed, e.g. quantized), loaded once."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, str(dtype), str(device), transform_name)
    except OSError:
        key = None  # load_gpt reports the missing file
    with _LOCK:
        gpt = _LOADED.get(key) if key is not None else None
        if gpt is None:
            gpt = load_gpt(path, dtype=dtype).to(device).eval()
            if transform is not None:
                gpt = transform(gpt)
            if key is not None:
                _LOADED[key] = gpt
        return gpt
