"""``agent-tts doctor``: what this machine offers agent-tts: runtimes, devices, sound, voices and their exports."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="report ONNX Runtime providers, torch's device, the audio devices and the configured voices",
        description="Print what agent-tts finds on this machine; exit 1 when something needs fixing "
        "(each such line starts with 'problem:' and says how).",
    )
    parser.set_defaults(handler=run)


class Report:
    """Lines under headings; counts the problems."""

    def __init__(self) -> None:
        self.problems = 0

    def heading(self, title: str) -> None:
        print(f"\n{title}")

    def line(self, text: str) -> None:
        print(f"  {text}")

    def problem(self, text: str) -> None:
        self.problems += 1
        print(f"  problem: {text}")


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch(report: Report) -> None:
    import torch

    report.heading("torch")
    report.line(f"version {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            report.line(f"cuda:{index} {torch.cuda.get_device_name(index)}")
    else:
        report.line("CUDA: not available (the engine runs on the CPU)")


def _cpu(report: Report) -> None:
    import torch

    from agent_tts.cpu_features import cpu_features
    from agent_tts.models.precision import resolve_precision
    from agent_tts.openvino.runtime import openvino_version

    report.heading("CPU and precision")
    report.line(cpu_features().summary())
    report.line(f"--precision auto on the CPU: {resolve_precision('auto', torch.device('cpu')).describe()}")
    _packed_linears(report)
    _attention_dtype(report)
    version = openvino_version()
    if version:
        from agent_tts.openvino.voice_loader import openvino_plan

        report.line(f"openvino {version} (--backend openvino; with --precision auto: {openvino_plan('auto').describe()})")
    else:
        report.line("openvino: not installed (--backend openvino needs: pip install openvino)")


def _packed_linears(report: Report) -> None:
    """What `packed_linear.py` measures at load, on one real-size GPT layer with random weights."""
    import torch

    from agent_tts.models.packed_linear import (GPT_PROBE_ROWS, packed_linears_setting, packing_is_faster,
                                                probe_weights)
    from agent_tts.models.synthetic import REAL_V2_GPT_MODEL
    from agent_tts.models.t2s import TransformerLayer

    dim = REAL_V2_GPT_MODEL["hidden_dim"]
    layer = TransformerLayer(dim, REAL_V2_GPT_MODEL["head"], 4 * dim)  # upstream's feed-forward width
    with torch.no_grad():
        for parameter in layer.parameters():  # the in-projection is allocated uninitialised
            parameter.normal_(0, 0.02)
    setting = packed_linears_setting()
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        faster, plain_s, packed_s = packing_is_faster(probe_weights(layer.to(dtype), 4), GPT_PROBE_ROWS)
        verdict = {"auto": "packed" if faster else "as stored", "on": "packed (forced on)",
                   "off": "as stored (forced off)"}[setting]
        report.line(f"{name} GPT linears, one real-size layer at {'/'.join(map(str, GPT_PROBE_ROWS))} rows: "
                    f"as stored {plain_s * 1000:.1f} ms, oneDNN-packed {packed_s * 1000:.1f} ms -> voices load "
                    f"them {verdict} (AGENT_TTS_PACKED_LINEARS={setting})")


def _attention_dtype(report: Report) -> None:
    """What `attention_dtype.py` measures when a bf16 GPT loads, at the real-size v2 GPT's head shape."""
    import torch

    from agent_tts.models.attention_dtype import (PROBE_LAYERS, PROBE_POSITIONS, PROBE_ROWS,
                                                  fp32_attention_is_faster, fp32_attention_setting)
    from agent_tts.models.synthetic import REAL_V2_GPT_MODEL

    heads = REAL_V2_GPT_MODEL["head"]
    faster, bf16_s, fp32_s = fp32_attention_is_faster(heads, REAL_V2_GPT_MODEL["hidden_dim"] // heads, PROBE_LAYERS,
                                                      torch.bfloat16)
    setting = fp32_attention_setting()
    verdict = {"auto": "fp32" if faster else "bf16", "on": "fp32 (forced on)", "off": "bf16 (forced off)"}[setting]
    report.line(f"bf16 GPT attention, {PROBE_LAYERS} layers of {PROBE_ROWS} rows over {PROBE_POSITIONS} positions: "
                f"bf16 {bf16_s * 1000:.1f} ms, fp32 {fp32_s * 1000:.1f} ms -> bf16 GPTs attend in {verdict} "
                f"(AGENT_TTS_FP32_ATTENTION={setting})")


def _onnxruntime(report: Report) -> None:
    report.heading("ONNX Runtime")
    cpu, gpu = _installed("onnxruntime"), _installed("onnxruntime-gpu")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        report.problem(f"onnxruntime cannot be imported ({exc}); reinstall with: bash scripts/setup.sh")
        return
    package = "onnxruntime-gpu" if gpu else "onnxruntime"
    report.line(f"{package} {ort.__version__}; providers: {', '.join(ort.get_available_providers())}")
    if cpu and gpu:
        report.problem("both onnxruntime and onnxruntime-gpu are installed and overwrite each other's files; "
                       "keep one (README, 'ONNX Runtime on a GPU')")
    import torch

    if torch.cuda.is_available() and "CUDAExecutionProvider" not in ort.get_available_providers():
        report.line("a CUDA GPU is present but ONNX Runtime has no CUDA provider: --backend onnx --device cuda "
                    "needs onnxruntime-gpu (README, 'ONNX Runtime on a GPU')")


def _audio(report: Report) -> None:
    report.heading("audio")
    try:
        import sounddevice
    except OSError as exc:
        report.problem(f"PortAudio is missing ({exc}); install it with: sudo apt install libportaudio2")
        return
    try:
        devices = sounddevice.query_devices()
    except Exception as exc:  # noqa: BLE001 - PortAudio reports host problems as various errors
        report.problem(f"cannot list sound devices ({exc})")
        return
    default_in, default_out = sounddevice.default.device
    for index, device in enumerate(devices):
        marks = [mark for mark, flag in (("default output", index == default_out),
                                         ("default input", index == default_in)) if flag]
        report.line(f"{index}: {device['name']} (in {device['max_input_channels']}, out "
                    f"{device['max_output_channels']}, {device['default_samplerate']:.0f} Hz)"
                    + (f"  <- {', '.join(marks)}" if marks else ""))
    if not any(device["max_output_channels"] > 0 for device in devices):
        report.line("no output device: converse and say write WAV files instead")


def _voices(report: Report) -> None:
    from agent_tts.errors import AgentTTSError
    from agent_tts.models.checkpoints import (SUPPORTED_VERSIONS, missing_sv_checkpoint, needs_speaker_verification,
                                              sovits_version, unsupported_version)
    from agent_tts.onnx.export import default_export_dir, voice_sources
    from agent_tts.onnx.manifest import ExportManifest, StaleExportError
    from agent_tts.voices import VoiceRegistry

    registry = VoiceRegistry()
    report.heading(f"voices ({registry.folder})")
    names = registry.names()
    if not names:
        report.line("none registered: agent-tts speaks with the bundled default voice")
        return
    default = registry.default_name()
    for name in names:
        try:
            spec = registry.spec(name)
        except AgentTTSError as exc:
            report.problem(str(exc))
            continue
        missing = [str(path) for path in (spec.gpt, spec.sovits, spec.ref_audio, *spec.aux_ref_audio, spec.hubert,
                                          spec.bert) if not path.exists()]
        if missing:
            report.problem(f"{name}: missing {', '.join(missing)}")
            continue
        try:
            version = sovits_version(spec.sovits)
        except AgentTTSError as exc:
            report.problem(f"{name}: {exc}")
            continue
        if version not in SUPPORTED_VERSIONS:
            report.problem(f"{name}: {unsupported_version(spec.sovits, version, 'SoVITS')}")
            continue
        if needs_speaker_verification(version) and not spec.sv.is_file():
            report.problem(f"{name}: {missing_sv_checkpoint(spec.sv, version)}")
            continue
        export_dir = default_export_dir(name)
        try:
            manifest = ExportManifest.read(export_dir)
            manifest.require_fresh(voice_sources(spec, manifest.version), name)
            export = f"ONNX export up to date in {export_dir}"
        except StaleExportError as exc:
            export = f"no usable ONNX export ({exc})" if export_dir.exists() else \
                f"no ONNX export (make one with: agent-tts export-onnx {name})"
        references = f" + {len(spec.aux_ref_audio)} auxiliary reference(s)" if spec.aux_ref_audio else ""
        report.line(f"{'*' if name == default else ' '} {name}: {version}, {spec.ref_language}, {spec.gpt.name}, "
                    f"{spec.sovits.name}{references}; {export}")


def run(args: argparse.Namespace) -> int:
    from agent_tts import __version__

    print(f"agent-tts {__version__}, Python {platform.python_version()}, {platform.platform()}")
    report = Report()
    for section in (_torch, _cpu, _onnxruntime, _audio, _voices):
        section(report)
    print(f"\n{report.problems} problem{'s' if report.problems != 1 else ''} found")
    sys.stdout.flush()
    return 1 if report.problems else 0
