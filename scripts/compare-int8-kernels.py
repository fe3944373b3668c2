#!/usr/bin/env python3
"""Which int8 weight-only kernel the AR step should use: torch's, ONNX Runtime's `MatMulNBits` or OpenVINO's.

    .venv/bin/python scripts/compare-int8-kernels.py [--gpt S1.CKPT] [--rounds 3] [--json PATH] [--emulated-avx2]

Part 1 times the real-size v2 GPT's 96 linears (24 layers of in-projection
512->1536, out-projection 512->512, feed-forward 512->2048 and 2048->512,
random weights) for one row, the shape of an AR step, in every
implementation installed here: torch fp32 as stored and oneDNN-packed, torch
int8 (`Int8WeightLinear`, fed fp32 rows as on a CPU without native bf16 and
bf16 rows as on one with it), ONNX Runtime fp32 `MatMul` and 8-bit
`MatMulNBits` (block 32; accuracy level 0 computes in fp32, level 4
quantizes the rows to int8), OpenVINO fp32 and int8-compressed weights.
No bias. Each implementation's products are
checked against numpy's fp32 ones first (the error is printed; over 5% of a
product's magnitude stops the script).

Part 2 (`--gpt`, e.g. the real-size random-weight voice's ``s1.ckpt``) times
a whole AR step for one row with a 160-position cache: torch fp32 and int8
as a voice loads them, and the model's ONNX step graph on OpenVINO with fp32
and int8-compressed weights, at a fixed cache length (OpenVINO's best case:
no new shape) and over 40 growing lengths (what decoding does).

Prints the CPU and its ISA features first; every figure is the best of
`--rounds` rounds, each round timing every implementation in turn (a mean of
20 calls each), so that a machine whose speed drifts favours none.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from agent_tts.cpu_features import cpu_features
from agent_tts.models.packed_linear import PackedLinear
from agent_tts.models.quantization import Int8WeightLinear, per_channel_int8

LAYERS = 24
SHAPES = [(1536, 512), (512, 512), (2048, 512), (512, 2048)] * LAYERS  # (out, in) of one layer's four linears
CALLS = 20
STEP_CACHE_POSITIONS = 160
GROWING_LENGTHS = range(200, 240)
MAX_PRODUCT_ERROR = 0.05  # int8 weights and bf16 rows stay near 1%; more means a kernel computes something else
LINEARS = "96 linears, one row"
EMULATED_AVX2 = "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2"


Timed = dict[str, tuple[Callable[[], object], int]]
"""label -> (a call, how many products or steps one call makes)."""


def race(entries: Timed, rounds: int) -> dict[str, float]:
    """Milliseconds per product or step of each entry: the best of `rounds` rounds, each timing every entry in turn
    (a mean over `CALLS` calls, after 3 warm-up calls), so that a machine whose speed drifts favours none."""
    for run, _ in entries.values():
        for _ in range(3):
            run()
    best = {label: float("inf") for label in entries}
    for _ in range(rounds):
        for label, (run, per_call) in entries.items():
            start = time.perf_counter()
            for _ in range(CALLS):
                run()
            best[label] = min(best[label], (time.perf_counter() - start) / (CALLS * per_call) * 1000)
    return best


def torch_linears(weights: list[torch.Tensor], rows: dict[int, np.ndarray]) -> Timed:
    fp32_rows = {width: torch.from_numpy(row) for width, row in rows.items()}
    bf16_rows = {width: row.to(torch.bfloat16) for width, row in fp32_rows.items()}
    packed = [PackedLinear(weight, None) for weight in weights]
    int8 = [Int8WeightLinear(weight, None) for weight in weights]
    int8_bf16 = [Int8WeightLinear(weight.to(torch.bfloat16), None) for weight in weights]
    return {
        "torch fp32 as stored": (lambda: [F.linear(fp32_rows[w.shape[1]], w) for w in weights], 1),
        "torch fp32 oneDNN-packed": (lambda: [layer(fp32_rows[layer.in_features]) for layer in packed], 1),
        "torch int8, fp32 rows": (lambda: [layer(fp32_rows[layer.in_features]) for layer in int8], 1),
        "torch int8, bf16 rows": (lambda: [layer(bf16_rows[layer.in_features]) for layer in int8_bf16], 1),
    }


def products_error(run: Callable[[], object], reference: list[np.ndarray]) -> float:
    """The largest error of one call's 96 products, relative to each product's largest magnitude."""
    result = run()
    outputs = result.to_tuple() if hasattr(result, "to_tuple") else result  # an OpenVINO result, else a list
    errors = []
    for output, expected in zip(outputs, reference, strict=True):
        output = output.float().numpy() if isinstance(output, torch.Tensor) else np.asarray(output)
        errors.append(float(np.abs(output.reshape(expected.shape) - expected).max() / np.abs(expected).max()))
    return max(errors)


def onnxruntime_linears(weights: list[np.ndarray], rows: dict[int, np.ndarray]) -> Timed:
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    block = 32

    def session(kind: str, accuracy_level: int = 0):
        nodes, initializers, outputs = [], [], []
        for index, weight in enumerate(weights):
            out_features, in_features = weight.shape
            name = f"x{in_features}"
            if kind == "nbits":
                # MatMulNBits stores unsigned values around a zero point of 128, per block of `block` inputs
                blocks = weight.reshape(out_features, in_features // block, block)
                scale = np.maximum(np.abs(blocks).max(axis=2, keepdims=True), 1e-30) / 127
                quantized = (np.clip(np.round(blocks / scale), -127, 127) + 128).astype(np.uint8)
                initializers += [numpy_helper.from_array(quantized, f"b{index}"),
                                 numpy_helper.from_array(scale.reshape(-1).astype(np.float32), f"s{index}")]
                nodes.append(helper.make_node("MatMulNBits", [name, f"b{index}", f"s{index}"], [f"y{index}"],
                                              domain="com.microsoft", K=in_features, N=out_features, bits=8,
                                              block_size=block, accuracy_level=accuracy_level))
            else:
                initializers.append(numpy_helper.from_array(np.ascontiguousarray(weight.T), f"w{index}"))
                nodes.append(helper.make_node("MatMul", [name, f"w{index}"], [f"y{index}"]))
            outputs.append(helper.make_tensor_value_info(f"y{index}", TensorProto.FLOAT, [1, out_features]))
        inputs = [helper.make_tensor_value_info(f"x{width}", TensorProto.FLOAT, [1, width]) for width in (512, 2048)]
        model = helper.make_model(helper.make_graph(nodes, "linears", inputs, outputs, initializers),
                                  opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    feeds = {f"x{width}": row for width, row in rows.items()}
    sessions = {"onnxruntime fp32 MatMul": session("fp32"),
                "onnxruntime MatMulNBits 8-bit, fp32 compute": session("nbits", 0),
                "onnxruntime MatMulNBits 8-bit, int8 rows": session("nbits", 4)}
    return {name: (lambda s=s: s.run(None, feeds), 1) for name, s in sessions.items()}


def openvino_hints() -> list[str]:
    return ["f32", "bf16"] if cpu_features().native_bf16 else ["f32"]


def openvino_compile(model, hint: str):
    import openvino

    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": hint}
    return openvino.Core().compile_model(model, "CPU", config).create_infer_request()


def int8_compressed(matrix: np.ndarray, transposed: bool):
    """OpenVINO's compressed-weight pattern (int8 constant, convert, multiply by per-channel scales), which its CPU
    plugin runs as an int8-weight matrix product; `matrix` is [out, in] when `transposed` (a MatMul's transpose_b),
    else [in, out]. Rounded as `Int8WeightLinear` rounds."""
    import openvino.opset13 as ops

    out_by_in = torch.from_numpy(np.ascontiguousarray(matrix if transposed else matrix.T))
    quantized, scale = (tensor.numpy() for tensor in per_channel_int8(out_by_in))
    quantized, scale = (quantized, scale[:, None]) if transposed else (quantized.T.copy(), scale[None, :])
    return ops.multiply(ops.convert(ops.constant(quantized), np.float32), ops.constant(scale))


def openvino_linears(weights: list[np.ndarray], rows: dict[int, np.ndarray]) -> Timed:
    import openvino
    import openvino.opset13 as ops

    def model(int8: bool):
        inputs = {width: ops.parameter([1, width], np.float32, name=f"x{width}") for width in (512, 2048)}
        outputs = [ops.matmul(inputs[weight.shape[1]], int8_compressed(weight, True) if int8 else ops.constant(weight),
                              False, True) for weight in weights]
        return openvino.Model(outputs, list(inputs.values()))

    feeds = {f"x{width}": row for width, row in rows.items()}
    entries = {}
    for hint in openvino_hints():
        for int8 in (False, True):
            request = openvino_compile(model(int8), hint)
            label = f"openvino {'int8 weights' if int8 else 'fp32 weights'}, {hint} compute"
            entries[label] = (lambda r=request: r.infer(feeds, share_inputs=True), 1)
    return entries


def compress_step_graph(model) -> int:
    """Replace every constant weight of a MatMul in an OpenVINO model by its int8-compressed form; how many."""
    count = 0
    for node in model.get_ordered_ops():
        weight = node.input_value(1).get_node() if node.get_type_name() == "MatMul" else None
        if weight is None or weight.get_type_name() != "Constant":
            continue
        compressed = int8_compressed(weight.get_data().astype(np.float32), node.get_attributes()["transpose_b"])
        node.input(1).replace_source_output(compressed.output(0))
        count += 1
    return count


def whole_steps(gpt_path: Path, folder: Path, emulated_avx2: bool = False) -> Timed:
    """AR steps of one row: torch as a voice loads the GPT, and its ONNX step graph (written in `folder`) on
    OpenVINO at a fixed cache length and over `GROWING_LENGTHS` (each length seen before: the first pass is the
    warm-up). `emulated_avx2`: torch alone, planned for a CPU without native bf16."""
    import openvino

    from agent_tts.models.checkpoints import load_gpt
    from agent_tts.models.precision import resolve_precision
    from agent_tts.models.shared import shared_gpt
    from agent_tts.onnx.export import export_gpt_step
    from agent_tts.onnx.graphs import cache_names

    entries: Timed = {}
    cpu = torch.device("cpu")
    features = cpu_features()
    if emulated_avx2:
        features = dataclasses.replace(features, flags=features.flags - {"avx512_bf16", "amx_tile", "amx_bf16"})
    token, position, slot = torch.zeros(1, 1, dtype=torch.long), torch.tensor([60]), torch.tensor([STEP_CACHE_POSITIONS])
    for precision in ("fp32", "int8"):
        gpt = shared_gpt(gpt_path, resolve_precision(precision, cpu, features), cpu)
        view = gpt.new_cache(STEP_CACHE_POSITIONS + 1).view(1, STEP_CACHE_POSITIONS + 1)
        entries[f"torch {precision} step (as a voice loads it)"] = (
            lambda gpt=gpt, view=view: gpt.step(token, position, slot, view), 1)
    if emulated_avx2:
        return entries

    gpt = load_gpt(gpt_path).eval()
    names, width = cache_names(gpt.config.num_layers, "past"), gpt.config.hidden_dim

    def feeds(length: int) -> dict[str, np.ndarray]:
        cache = {name: np.random.standard_normal((1, length, width)).astype(np.float32) for name in names}
        return {"token": np.array([[5]], dtype=np.int64), "position": np.array([60], dtype=np.int64), **cache}

    fixed, growing = feeds(STEP_CACHE_POSITIONS), [feeds(length) for length in GROWING_LENGTHS]
    path = folder / "gpt_step.onnx"
    export_gpt_step(gpt, path)
    for hint in openvino_hints():
        for int8 in (False, True):
            model = openvino.Core().read_model(str(path))
            if int8:
                compress_step_graph(model)
            request = openvino_compile(model, hint)
            label = f"openvino {'int8' if int8 else 'fp32'} weights, {hint} compute, step"
            entries[f"{label}, fixed length"] = (lambda r=request: r.infer(fixed, share_inputs=True), 1)
            entries[f"{label}, growing lengths"] = (
                lambda r=request: [r.infer(inputs, share_inputs=True) for inputs in growing], len(growing))
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="int8 weight-only kernels for the AR step, side by side")
    parser.add_argument("--gpt", type=Path, help="an s1 checkpoint: also time whole AR steps")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--emulated-avx2", action="store_true",
                        help=f"for a run under {EMULATED_AVX2}: torch's rows alone (ONNX Runtime and OpenVINO do not "
                             "follow those variables) and torch's precision plans for a CPU without native bf16")
    args = parser.parse_args(argv)

    emulation = f" (run as AVX2-only: {EMULATED_AVX2})" if args.emulated_avx2 else ""
    print(f"CPU: {cpu_features().summary()}{emulation}; torch {torch.__version__}, {torch.get_num_threads()} threads",
          flush=True)
    if args.emulated_avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        parser.error(f"--emulated-avx2 needs the environment {EMULATED_AVX2}")
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(shape, generator=generator) * 0.05 for shape in SHAPES]
    arrays = [weight.numpy() for weight in weights]
    rows = {width: torch.randn(1, width, generator=generator).numpy() for width in (512, 2048)}
    linears = torch_linears(weights, rows)
    runtimes = () if args.emulated_avx2 else (("onnxruntime", onnxruntime_linears), ("openvino", openvino_linears))
    for runtime, entries in runtimes:
        try:
            linears.update(entries(arrays, rows))
        except ImportError:
            print(f"({runtime} is not installed: its rows are left out)")
    reference = [rows[array.shape[1]] @ array.T for array in arrays]
    with torch.inference_mode():
        errors = {label: products_error(run, reference) for label, (run, _) in linears.items()}
    wrong = {label: error for label, error in errors.items() if error > MAX_PRODUCT_ERROR}
    if wrong:
        print(f"these compute something else (error over {MAX_PRODUCT_ERROR:.0%} of the products' magnitude): {wrong}")
        return 1
    with torch.inference_mode(), tempfile.TemporaryDirectory() as folder:
        figures = {LINEARS: race(linears, args.rounds)}
        if args.gpt:
            figures["AR step, one row"] = race(whole_steps(args.gpt, Path(folder), args.emulated_avx2), args.rounds)
    for section, timings in figures.items():
        print(f"\n{section} (ms per product or step, best of {args.rounds} rounds"
              f"{'; error against fp32, of the largest magnitude' if section == LINEARS else ''}):")
        for name, ms in timings.items():
            error = f"  {errors[name]:7.2%}" if section == LINEARS else ""
            print(f"  {name:<62} {ms:8.2f}{error}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_features().as_dict(), "emulated_avx2": args.emulated_avx2,
                                         "torch": torch.__version__,
                                         "threads": torch.get_num_threads(), "figures": figures,
                                         "products_error": errors}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
