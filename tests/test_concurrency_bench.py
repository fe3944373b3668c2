"""`agent-tts bench-concurrency` end to end on the fixture voice (the records' shape and counts, not speed)."""

from __future__ import annotations

import json

from agent_tts.cli.main import main
from engine_support import write_fixture_voice


def test_bench_concurrency_records_both_engines_and_the_batched_steady_state(gsv_v2_fixture, tmp_path, capsys):
    out = tmp_path / "concurrency.json"
    toml = write_fixture_voice(gsv_v2_fixture, tmp_path)
    assert main(["bench-concurrency", "--voice", str(toml), "--device", "cpu", "--streams", "1", "3",
                 "--texts", "sentence_20_chars", "--stage", "ar", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert figures["linears"].startswith("GPT ") and figures["cpu"]
    records = {(record["engine"], record["streams"]): record for record in figures["records"]}
    assert set(records) == {("batched", 1), ("threads", 1), ("batched", 3), ("threads", 3)}
    per_stream = records[("batched", 1)]["ar_tokens"]
    for (engine, streams), record in records.items():
        assert record["stage"] == "ar" and record["ar_tokens"] == streams * per_stream  # fixed tokens per phone
        assert record["ar_tokens_per_s"] == record["ar_tokens"] / record["wall_s"]
        assert 0 < record["first_audio_p50_s"] <= record["first_audio_p95_s"] < record["wall_s"]
        if engine == "threads":
            assert record["max_batch_rows"] == 1 and record["full_batch_step_tokens_per_s"] is None
        else:
            assert record["max_batch_rows"] == streams  # every stream's row shared steps
            assert record["full_batch_step_tokens_per_s"] > record["ar_tokens_per_s"]  # steps alone, no prefills
            assert 0 < record["prefill_s"] < record["wall_s"] and 1 <= record["prefill_passes"] <= streams
    assert "3 streams: batched AR tokens/s = " in printed and "its full-batch steps" in printed
