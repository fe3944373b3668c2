"""16 concurrent clients of both HTTP APIs, four voices, sixteen texts: every response sounds as it does alone.

The four fixture voices (tiny random-weight models, four reference clips) share one GPT file, so the
concurrent streams share one batched AR step; greedy decoding with a seed per text makes each response
comparable with its solo rendering.
"""

from __future__ import annotations

import json
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from agent_tts.engine.scheduler import scheduler_for
from agent_tts.parity import snr_db
from agent_tts.voice import Voice
from server_support import CLIPS, fixture_server, pcm16

TEXTS = ["Your order shipped on Monday.", "The refund takes three days.", "Please hold while I check.",
         "Thanks for calling, goodbye.", "Your table is ready now.", "The train leaves at noon.",
         "We open again tomorrow morning.", "Your password was changed.", "The package is at the door.",
         "Press one for billing questions.", "Your appointment is on Friday.", "The meeting moved to three.",
         "Your balance is twelve dollars.", "We sent a new code by text.", "The store closes at nine tonight.",
         "Thank you for your patience."]
VOICES = [name for name, *_ in CLIPS]


def openai_pcm(server, text: str, voice: str, seed: int) -> bytes:
    status, body, _ = server.request("POST", "/v1/audio/speech", {
        "model": "tts-1", "input": text, "voice": voice, "response_format": "pcm", "top_k": 1, "seed": seed})
    assert status == 200, body
    return body


def api_v2_raw(server, text: str, voice: str, seed: int) -> bytes:
    query = urllib.parse.urlencode({"text": text, "text_lang": "en", "voice": voice, "top_k": "1", "seed": str(seed),
                                    "media_type": "raw", "streaming_mode": "true"})
    status, body, _ = server.request("GET", f"/tts?{query}")
    assert status == 200, body
    return body


def test_sixteen_concurrent_clients_each_get_their_solo_rendering(gsv_v2_fixture, tmp_path):
    requests = [(openai_pcm if index % 2 else api_v2_raw, text, VOICES[index % 4], 100 + index)
                for index, text in enumerate(TEXTS)]
    with fixture_server(gsv_v2_fixture, tmp_path / "voices", max_streams=16) as server:
        alone = [send(server, text, voice, seed) for send, text, voice, seed in requests]
        scheduler = scheduler_for(Voice.load(tmp_path / "voices" / "fixture.toml").gpt)  # the GPT the server's voices share
        scheduler.batch_sizes.clear()
        with ThreadPoolExecutor(len(requests)) as pool:
            together = list(pool.map(lambda r: r[0](server, *r[1:]), requests))
        metrics = server.metrics()
        assert json.loads(server.get("/health")[1])["status"] == "ready"
    print(f"batch sizes seen: max {max(scheduler.batch_sizes)}, mean {np.mean(scheduler.batch_sizes):.1f}")
    assert max(scheduler.batch_sizes) >= 4  # the clients' streams really shared AR steps
    for (send, text, voice, _), solo, concurrent in zip(requests, alone, together):
        solo_pcm, pcm = pcm16(solo), pcm16(concurrent)
        assert len(pcm) == len(solo_pcm) > 8000, (text, voice)
        assert snr_db(pcm, solo_pcm) >= 40, (text, voice)
    completed = sum(value for name, value in metrics.items()
                    if name.startswith("agent_tts_streams_total") and 'outcome="completed"' in name)
    assert completed == 2 * len(requests) and not any(
        value for name, value in metrics.items() if name.startswith("agent_tts_errors_total"))
