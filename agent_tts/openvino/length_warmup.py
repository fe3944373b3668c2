"""Compile the OpenVINO decoder for the token counts of short units in the background, while it is idle (opt-in).

OpenVINO compiles the decoder's kernels anew for each token count it has not
run yet (0.7-1 s in bf16 on the project's 2-core AMX Xeon, against 60-100 ms
a decode afterwards), and keeps each compiled length's buffers (94-139 MB
per length between 25 and 48 tokens, real-size decoder). The chunked decoder keeps its
windows to the default chunk plan's lengths and multiples of 16 tokens,
compiled at load, but a window that begins at a unit's first token is as long
as the unit so far, so a short unit (up to `SHORT_UNIT_TOKENS`, about 2 s of
speech) decodes at its own length, and the first unit of each new length
stalls for that long. With `AGENT_TTS_OPENVINO_BACKGROUND_COMPILE=1` this
thread runs the decoder once at each of those lengths not run yet, one at a
time and only once the decoder has been idle for `IDLE_S`, so it takes only
spare time (about 25 s of it) and a stream that starts meanwhile waits at most
for the one length in progress; it costs about 3.7 GB of memory per voice,
which is why it is off by default. It stops at exit (engine/exit_guard.py).
"""

from __future__ import annotations

import os
import threading

import torch

from agent_tts.engine.exit_guard import stop_at_exit

SHORT_UNIT_TOKENS = 48
IDLE_S = 0.5
SWITCH = "AGENT_TTS_OPENVINO_BACKGROUND_COMPILE"


def compile_short_lengths_in_background(decoder, ge: torch.Tensor,
                                        lengths=range(1, SHORT_UNIT_TOKENS + 1)) -> threading.Thread | None:
    """Start the thread (see the module) for `decoder` (an `OnnxSoVITSDecoder`); None unless it is turned on."""
    if os.environ.get(SWITCH, "0") != "1":
        return None
    stop = threading.Event()

    def run() -> None:
        for length in lengths:
            while not stop.is_set() and not decoder.idle_for(IDLE_S):
                stop.wait(IDLE_S)
            if stop.is_set():
                return
            decoder.prepare_lengths([length], ge)

    thread = threading.Thread(target=run, name="agent-tts-openvino-compile", daemon=True)
    stop_at_exit(thread, stop.set)
    decoder.background_compile = thread  # a benchmark waits for it, so that it measures a quiet machine
    thread.start()
    return thread
