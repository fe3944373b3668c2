"""The GPU check: the engine's CUDA paths against its CPU path, and their speed, needing only torch and numpy.

Run by `scripts/gpu-check.sh` on a machine with a GPU (and, with `--dry-run`,
on the CPU in CI). Random-weight GPT and SoVITS files in the official formats
(tiny and real v2 size) are written and loaded twice: on the CPU in fp32 (the
path `agent-tts parity` proves against the reference fixture) and on the
device. Checked, with the tolerances in `TOLERANCES`:

* GPT logits and greedy tokens on the device in fp32 and fp16 against the CPU;
* the batched step replayed as CUDA graphs against the eager step: greedy
  tokens identical for batches of 1 to 16 rows, rows joining mid-batch;
* SoVITS decoding on the device against the CPU (SNR).

Measured: AR ms per batched step for 1..16 rows (eager and graphed), prefill
ms, SoVITS ms per 10- and 100-token window. The figures are JSON; the process
exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from agent_tts.engine.ar_batch import ARRequest, BatchDecoder, DecodeOptions, EagerStep
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.engine.t2s_decoding import generate_semantic_tokens
from agent_tts.models.checkpoints import load_gpt, load_sovits
from agent_tts.models.synthetic import (REAL_V2_GPT_MODEL, REAL_V2_SOVITS_MODEL, TINY_GPT_MODEL, TINY_SOVITS_MODEL,
                                        write_gpt_checkpoint, write_sovits_checkpoint)

# fp32 on the device computes what the CPU does up to summation order; fp16 keeps 10 mantissa bits.
TOLERANCES = {
    "fp32": {"logits_rel": 1e-3, "greedy_tokens_equal": 60, "decode_snr_db": 60.0},
    "fp16": {"logits_rel": 3e-2, "greedy_tokens_equal": 30},
}
GREEDY = DecodeOptions(SamplingOptions(top_k=1), max_tokens=60, suppress_eos=True)


def _inputs(gpt, n_phones: int, n_prompt: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    phones = torch.randint(0, gpt.config.phoneme_vocab_size, (n_phones,), generator=generator)
    bert = torch.randn(gpt.config.bert_dim, n_phones, generator=generator) * 0.3
    prompt = torch.randint(0, gpt.config.vocab_size - 1, (n_prompt,), generator=generator)
    return phones, bert, prompt


def _greedy(gpt, inputs, device) -> tuple[list[int], torch.Tensor]:
    phones, bert, prompt = (tensor.to(device) for tensor in inputs)
    logits: list[torch.Tensor] = []
    tokens = list(generate_semantic_tokens(gpt, phones[None], bert[None].to(gpt.compute_dtype), prompt[None], GREEDY,
                                           on_logits=lambda step, row: logits.append(row.float().cpu())))
    return tokens, torch.cat(logits)


def ar_against_cpu(cpu_gpt, device_gpt, device, precision: str) -> dict:
    """Greedy decoding of three random units on the device vs the CPU: first differing token, logits error."""
    tolerance = TOLERANCES[precision]
    cases = []
    for seed, (phones, prompt) in enumerate(((20, 40), (60, 150), (110, 250))):
        inputs = _inputs(cpu_gpt, phones, prompt, seed)
        want_tokens, want_logits = _greedy(cpu_gpt, inputs, "cpu")
        got_tokens, got_logits = _greedy(device_gpt, inputs, device)
        equal = next((i for i, (a, b) in enumerate(zip(want_tokens, got_tokens)) if a != b), len(want_tokens))
        steps = min(len(want_logits), len(got_logits), equal + 1)  # logits compare while the inputs agree
        error = float((got_logits[:steps] - want_logits[:steps]).abs().max() / want_logits[:steps].abs().max())
        cases.append({"phones": phones, "prompt": prompt, "greedy_tokens_equal": equal, "logits_rel_err": error})
    passed = all(case["greedy_tokens_equal"] >= tolerance["greedy_tokens_equal"]
                 and case["logits_rel_err"] <= tolerance["logits_rel"] for case in cases)
    return {"precision": precision, "tolerance": tolerance, "cases": cases, "passed": passed}


def graphs_against_eager(gpt, device, graph_runner) -> dict:
    """Rows of different lengths decoded greedily as one batch, joining at different steps, by both runners."""
    results = {}
    for name, runner in (("eager", EagerStep(gpt)), ("graphed", graph_runner)):
        decoder = BatchDecoder(gpt, runner)
        rows, joins, tokens = {}, {0: range(0, 4), 3: range(4, 9), 7: range(9, 16)}, {}
        for step in range(200):
            for case in joins.get(step, ()):
                phones, bert, prompt = (t.to(device) for t in _inputs(gpt, 15 + 7 * case, 30 + 11 * case, case))
                rows[case] = decoder.add(ARRequest(phones, bert.to(gpt.compute_dtype), prompt, GREEDY))
            for case, row in list(rows.items()):
                if row.finished:
                    tokens[case] = list(row.tokens)
                    decoder.remove(row)
                    del rows[case]
            if not rows and step > 7:
                break
            decoder.step(list(rows.values()))
        results[name] = tokens
    equal = results["eager"] == results["graphed"]
    return {"rows": 16, "identical_greedy_tokens": equal, "passed": equal}


def _synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_speed(gpt, device, runner, rows_list: list[int], steps: int) -> dict[int, float]:
    """ms per batched step for each batch size (rows at 300 positions each)."""
    timings = {}
    for rows in rows_list:
        decoder = BatchDecoder(gpt, runner)
        options = DecodeOptions(SamplingOptions(top_k=15), max_tokens=steps + 5, suppress_eos=True)
        active = []
        for case in range(rows):
            phones, bert, prompt = (t.to(device) for t in _inputs(gpt, 60, 240, case))
            active.append(decoder.add(ARRequest(phones, bert.to(gpt.compute_dtype), prompt, options,
                                                torch.Generator(device=device).manual_seed(case))))
        for _ in range(3):
            decoder.step(active)
        _synchronize(device)
        started = time.perf_counter()
        for _ in range(steps):
            decoder.step(active)
        _synchronize(device)
        timings[rows] = 1000 * (time.perf_counter() - started) / steps
    return timings


def prefill_ms(gpt, device, repeats: int) -> float:
    phones, bert, prompt = (t.to(device) for t in _inputs(gpt, 60, 240, 0))
    cache = gpt.new_cache(400)
    with torch.inference_mode():
        run = lambda: gpt.prefill(phones[None], bert[None].to(gpt.compute_dtype), prompt[None],  # noqa: E731
                                  cache.row_view(0, 300))
        run()
        _synchronize(device)
        started = time.perf_counter()
        for _ in range(repeats):
            run()
        _synchronize(device)
    return 1000 * (time.perf_counter() - started) / repeats


def decode_check(cpu_sovits, device_sovits, device, repeats: int) -> dict:
    """SoVITS decode of 10- and 100-token windows on the device vs the CPU: SNR and ms per window."""
    generator = torch.Generator().manual_seed(5)
    phones = torch.randint(0, 300, (1, 40), generator=generator)
    ge = torch.randn(1, cpu_sovits.config.gin_channels, 1, generator=generator) * 0.1
    figures = {}
    with torch.inference_mode():
        for tokens in (10, 100):
            codes = torch.randint(0, cpu_sovits.config.codebook_size, (1, 1, tokens), generator=generator)
            want = cpu_sovits.decode(codes, phones, ge, noise_scale=0.0)[0, 0]
            run = lambda: device_sovits.decode(codes.to(device), phones.to(device), ge.to(device),  # noqa: E731
                                               noise_scale=0.0)
            got = run()[0, 0].float().cpu()
            noise = float(((got - want) ** 2).sum())
            snr = 10 * math.log10(float((want ** 2).sum()) / noise) if noise > 0 else float("inf")
            _synchronize(device)
            started = time.perf_counter()
            for _ in range(repeats):
                run()
            _synchronize(device)
            figures[tokens] = {"snr_db": snr, "ms": 1000 * (time.perf_counter() - started) / repeats}
    passed = all(entry["snr_db"] >= TOLERANCES["fp32"]["decode_snr_db"] for entry in figures.values())
    return {"windows": figures, "passed": passed}


def run_check(device: torch.device, real_size: bool, steps: int, repeats: int, rows_list: list[int],
              folder: Path) -> dict:
    gpt_model, sovits_model = (REAL_V2_GPT_MODEL, REAL_V2_SOVITS_MODEL) if real_size else \
        (TINY_GPT_MODEL, TINY_SOVITS_MODEL)
    gpt_file = write_gpt_checkpoint(folder / "s1.ckpt", gpt_model, seed=1)
    sovits_file = write_sovits_checkpoint(folder / "s2.pth", sovits_model, seed=2)
    cpu_gpt, cpu_sovits = load_gpt(gpt_file).eval(), load_sovits(sovits_file).eval()
    device_gpt = load_gpt(gpt_file).to(device).eval()
    device_sovits = load_sovits(sovits_file).to(device).eval()
    if device.type == "cuda":
        from agent_tts.engine.cuda_graphs import CudaGraphStep

        graph_runner, graph_name = CudaGraphStep(device_gpt), "cuda graphs"
    else:
        from agent_tts.engine.cuda_graphs import FullCacheStep

        graph_runner, graph_name = FullCacheStep(device_gpt), "fixed shapes (what a CUDA graph captures), CPU"
    report = {"device": str(device), "torch": torch.__version__, "real_size": real_size,
              "machine": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "graph_runner": graph_name, "checks": {}, "speed": {}}
    report["checks"]["ar_fp32"] = ar_against_cpu(cpu_gpt, device_gpt, device, "fp32")
    if device.type == "cuda":
        fp16_gpt = load_gpt(gpt_file, dtype=torch.float16).to(device).eval()
        report["checks"]["ar_fp16"] = ar_against_cpu(cpu_gpt, fp16_gpt, device, "fp16")
    report["checks"]["graphs_vs_eager"] = graphs_against_eager(device_gpt, device, graph_runner)
    report["checks"]["decode_fp32"] = decode_check(cpu_sovits, device_sovits, device, repeats)
    report["speed"]["prefill_ms_300_positions"] = prefill_ms(device_gpt, device, repeats)
    report["speed"]["ar_step_ms_eager"] = step_speed(device_gpt, device, EagerStep(device_gpt), rows_list, steps)
    report["speed"]["ar_step_ms_graphed"] = step_speed(device_gpt, device, graph_runner, rows_list, steps)
    report["passed"] = all(check["passed"] for check in report["checks"].values())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny models instead of real v2 sizes")
    parser.add_argument("--steps", type=int, default=50, help="timed AR steps per batch size")
    parser.add_argument("--repeats", type=int, default=10, help="timed prefills and decodes")
    parser.add_argument("--rows", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="agent-tts-gpu-check-") as folder:
        report = run_check(device, not args.tiny, args.steps, args.repeats, args.rows, Path(folder))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    for name, check in report["checks"].items():
        print(f"{'PASS' if check['passed'] else 'FAIL'}  {name}", file=sys.stderr)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
