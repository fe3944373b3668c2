"""`agent-tts bench` end to end on the fixture voice (figures' shape, not their speed)."""

from __future__ import annotations

import json

from agent_tts.cli.bench_command import describe_thread_tuning
from agent_tts.cli.main import main
from engine_support import write_fixture_voice


def test_bench_reports_streaming_and_whole_and_other_first_chunk_sizes(gsv_v2_fixture, tmp_path, capsys):
    out = tmp_path / "bench.json"
    toml = write_fixture_voice(gsv_v2_fixture, tmp_path)
    assert main(["bench", "--voice", str(toml), "--runs", "2", "--full-runs", "1",
                 "--first-chunk-tokens", "10", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "first chunk 4 tokens: streaming first audio" in printed and "CPU rates before / after" in printed
    assert "(the case's first complete run " in printed
    figures = json.loads(out.read_text())
    assert figures["cpu_rates_before"]["gemm_gflops"] > 0 and figures["cpu_rates_after"]["read_gb_per_s"] > 0
    threads = figures["backends"]["torch fp32"]["ar_threads"]  # what the thread tuning chose, printed too
    assert threads["current"] in (1, threads["full"]) and len(threads["switches"]) <= threads["trials"]
    assert f"  AR steps: {describe_thread_tuning(threads)}" in printed
    for name in ("sentence_20_chars", "paragraph_3_sentences"):
        case = figures["backends"]["torch fp32"][name]
        assert case["first_chunk_tokens"] == 10
        streaming, whole = case["streaming"], case["whole"]
        assert streaming["first_audio_s"]["n"] == 2 and whole["first_audio_s"]["n"] == 2
        assert 0 < streaming["first_audio_s"]["p50"] and streaming["audio_s"] > 1
        assert streaming["rtf"] > 0 and streaming["rtf_first_complete_run"] > 0  # the first run is kept apart
        assert case["first_audio_ratio_whole_over_streaming_p50"] == (
            whole["first_audio_s"]["p50"] / streaming["first_audio_s"]["p50"])
        assert abs(streaming["first_chunk_audio_s"] - 10 / 25) < 0.01  # 25 tokens per second of audio
        smaller = case["streaming_first_audio_by_first_chunk_tokens"]["4"]
        assert smaller["first_audio_s"]["n"] == 2 and smaller["first_chunk_decode_ms"] > 0
        assert abs(smaller["first_chunk_audio_s"] - 4 / 25) < 0.01


def test_bench_refuses_a_first_chunk_of_no_tokens(capsys):
    assert main(["bench", "--first-chunk-tokens", "0"]) == 2
    assert "--first-chunk-tokens: chunk sizes must be at least one token" in capsys.readouterr().err


def test_bench_measures_each_precision_in_one_run_and_says_what_the_cpu_has(gsv_v2_fixture, tmp_path, capsys):
    out = tmp_path / "bench.json"
    toml = write_fixture_voice(gsv_v2_fixture, tmp_path)
    assert main(["bench", "--voice", str(toml), "--runs", "1", "--full-runs", "1", "--streaming-only",
                 "--precision", "fp32", "int8", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CPU: " in printed and "AVX2 " in printed and "AMX " in printed
    assert "against torch fp32" in printed
    figures = json.loads(out.read_text())
    assert set(figures["backends"]) == {"torch fp32", "torch int8"}
    int8 = figures["backends"]["torch int8"]
    assert int8["precision"].startswith("int8 (GPT int8 weights")
    assert "whole" not in int8["sentence_20_chars"] and int8["sentence_20_chars"]["streaming"]["rtf"] > 0
    assert set(figures["cpu"]) >= {"model", "avx2", "avx512", "avx512_bf16", "amx"}


def test_bench_warns_when_the_loaded_voices_leave_little_memory(monkeypatch, capsys):
    from agent_tts.cli import bench_command

    assert bench_command._meminfo_mib("MemAvailable") < bench_command._meminfo_mib("MemTotal")  # Linux's own file
    meminfo = {"MemTotal": 24000.0, "MemAvailable": 3000.0}
    monkeypatch.setattr(bench_command, "_meminfo_mib", meminfo.get)
    bench_command._warn_if_memory_is_short(9)
    assert "warning: 3000 MiB of 24000 MiB left after loading 9 configurations" in capsys.readouterr().err
    meminfo["MemAvailable"] = 12000.0
    bench_command._warn_if_memory_is_short(2)
    assert "warning" not in capsys.readouterr().err
