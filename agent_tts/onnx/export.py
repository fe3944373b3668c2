"""Export a voice's models to ONNX: the GPT (prefill + one-step graphs), the SoVITS decoder, HuBERT and BERT,
and for v2Pro/v2ProPlus voices the speaker-verification model.

The export goes to `OUTDIR.partial` and is renamed into place once every graph
is written and checked against torch, so an interrupted export never looks
complete. `manifest.json` records what it was made from (see `manifest.py`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from agent_tts import __version__
from agent_tts.errors import AgentTTSError
from agent_tts.models.checkpoints import (load_gpt, load_sovits, load_speaker_verification, needs_speaker_verification,
                                          read_sovits_checkpoint)
from agent_tts.models.fbank import MEL_BINS
from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.models.speaker_verification import ERes2NetV2
from agent_tts.models.t2s import Text2SemanticModel
from agent_tts.onnx.graphs import (BertGraph, GPTPrefillGraph, GPTStepGraph, PromptCodesGraph, SoVITSDecoderGraph,
                                   SpeakerEncoderGraph, SpeakerVerificationGraph, cache_names)
from agent_tts.onnx.manifest import (EXPORT_FORMAT, SV_GRAPH, TOKENIZER_FOLDER, fingerprint, graph_files,
                                     sources_digest, stamp_graph, write_manifest)
from agent_tts.voice import VoiceSpec

OPSET = 17
Progress = Callable[[int, int, str], None]


def default_export_dir(voice_name: str) -> Path:
    """Where `export-onnx` writes and `--backend onnx` looks: $AGENT_TTS_HOME/onnx/NAME, else the user's cache."""
    home = os.environ.get("AGENT_TTS_HOME")
    if home:
        return Path(home) / "onnx" / voice_name
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "agent-tts" / "onnx" / voice_name


def voice_sources(spec: VoiceSpec, voice_version: str) -> dict[str, Path]:
    """The files an export of a voice of this version is made from, by name."""
    sources = {"gpt": spec.gpt, "sovits": spec.sovits, "hubert": spec.hubert, "bert": spec.bert}
    if needs_speaker_verification(voice_version):
        sources["sv"] = spec.sv
    return sources


class StepBar:
    """Export progress on stderr: a redrawn bar `[####......] 3/9 exporting ... (12.3 s)` on a terminal,
    one line per step elsewhere (logs, pipes)."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.redraw = self.stream.isatty()
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int, label: str) -> None:
        filled = int(20 * done / total)
        elapsed = time.perf_counter() - self.started
        line = f"[{'#' * filled}{'.' * (20 - filled)}] {done}/{total} {label} ({elapsed:.1f} s)"
        if self.redraw:
            self.stream.write(f"\r{line}\033[K" + ("\n" if done == total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic_axes: dict[str, dict[int, str]]) -> None:
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter warns about every traced shape; the graphs compute shapes from tensors.
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)


def export_gpt_step(gpt: Text2SemanticModel, path: Path) -> None:
    """The GPT's step graph (`GPTStepGraph`) at `path`: inputs ``token``, ``position`` and ``past_{key,value}_{i}``
    [1, length, D]; outputs ``logits`` and ``new_{key,value}_{i}``."""
    past = cache_names(gpt.config.num_layers, "past")
    _export(GPTStepGraph(gpt), (torch.tensor([[5]]), torch.tensor([9]),
                                *[torch.randn(1, 16, gpt.config.hidden_dim) for _ in past]),
            path, ["token", "position", *past], ["logits", *cache_names(gpt.config.num_layers, "new")],
            {name: {1: "length"} for name in past})


def export_voice(spec: VoiceSpec, outdir: str | Path, progress: Progress | None = None) -> Path:
    """Write the graphs (six, seven for v2Pro/v2ProPlus), the BERT tokenizer and `manifest.json`; returns `outdir`."""
    outdir = Path(outdir)
    raw_sovits = read_sovits_checkpoint(spec.sovits)
    version = raw_sovits.version
    steps = ["hashing the source files", "loading the models", "exporting the GPT prefill graph",
             "exporting the GPT step graph", "exporting the SoVITS decoder", "exporting HuBERT (prompt codes)",
             "exporting the speaker encoder", "exporting BERT",
             *(["exporting the speaker-verification model"] if needs_speaker_verification(version) else []),
             "stamping and checking the graphs against torch"]
    report = progress or (lambda done, total, label: None)

    def step(label: str) -> None:
        report(steps.index(label), len(steps), label)

    partial = outdir.with_name(outdir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        step("hashing the source files")
        sources = {name: {"path": str(path.resolve()), "files": fingerprint(path)}
                   for name, path in voice_sources(spec, version).items()}
        step("loading the models")
        gpt, sovits = load_gpt(spec.gpt), load_sovits(raw_sovits)
        del raw_sovits
        sv_model = load_speaker_verification(spec.sv, version) if sovits.config.uses_speaker_verification else None
        hubert = HubertFeatureExtractor.from_folder(spec.hubert).eval()
        bert = BertFeatureExtractor.from_folder(spec.bert).eval()
        layers = gpt.config.num_layers

        step("exporting the GPT prefill graph")
        n_text, n_prompt = 7, 9
        present = cache_names(layers, "present")
        _export(GPTPrefillGraph(gpt), (torch.randint(0, 300, (1, n_text)), torch.randn(1, gpt.config.bert_dim, n_text),
                                       torch.randint(0, 1000, (1, n_prompt))),
                partial / "gpt_prefill.onnx", ["phone_ids", "bert", "prompt"], ["logits", *present],
                {"phone_ids": {1: "text"}, "bert": {2: "text"}, "prompt": {1: "prompt"},
                 **{name: {1: "positions"} for name in present}})
        step("exporting the GPT step graph")
        export_gpt_step(gpt, partial / "gpt_step.onnx")
        step("exporting the SoVITS decoder")
        config = sovits.config
        decoder_inputs = (torch.randint(0, config.codebook_size, (1, 1, 12)), torch.randint(0, 300, (1, n_text)),
                          torch.randn(1, config.gin_channels, 1), torch.randn(1, config.inter_channels, 30),
                          torch.tensor([0.5]), torch.tensor([24]))
        _export(SoVITSDecoderGraph(sovits), decoder_inputs, partial / "sovits_decoder.onnx",
                ["codes", "phone_ids", "ge", "noise", "noise_scale", "frames"], ["wav"],
                {"codes": {2: "tokens"}, "phone_ids": {1: "phones"}, "noise": {2: "noise_frames"},
                 "wav": {2: "samples"}})
        step("exporting HuBERT (prompt codes)")
        _export(PromptCodesGraph(hubert, sovits), (torch.randn(1, 32000),), partial / "prompt_codes.onnx",
                ["wav16k"], ["codes"], {"wav16k": {1: "samples"}, "codes": {1: "tokens"}})
        step("exporting the speaker encoder")
        speaker_inputs = (torch.randn(1, config.filter_length // 2 + 1, 100),)
        if sv_model is not None:
            speaker_inputs += (torch.randn(1, config.sv_dim),)
        _export(SpeakerEncoderGraph(sovits), speaker_inputs, partial / "speaker_encoder.onnx",
                ["spectrogram", "sv_embedding"][: len(speaker_inputs)], ["ge"], {"spectrogram": {2: "frames"}})
        step("exporting BERT")
        ids = bert.tokenizer("你好世界", return_tensors="pt")
        bert_inputs = ["input_ids", "attention_mask", "token_type_ids"]
        _export(BertGraph(bert), tuple(ids[name] for name in bert_inputs), partial / "bert.onnx", bert_inputs,
                ["hidden"], {name: {1: "tokens"} for name in [*bert_inputs, "hidden"]})
        bert.tokenizer.save_pretrained(str(partial / TOKENIZER_FOLDER))
        if sv_model is not None:
            step("exporting the speaker-verification model")
            _export(SpeakerVerificationGraph(sv_model), (torch.randn(1, 120, MEL_BINS),), partial / SV_GRAPH,
                    ["fbank"], ["sv_embedding"], {"fbank": {1: "frames"}})

        step("stamping and checking the graphs against torch")
        digest = sources_digest(sources)
        for name in graph_files(version):
            stamp_graph(partial / name, version, digest)
        _check_against_torch(partial, gpt, sovits, sv_model)
        write_manifest(partial, {
            "format": EXPORT_FORMAT, "agent_tts_version": __version__, "voice_version": version,
            "sources_sha256": digest, "opset": OPSET,
            "torch_version": torch.__version__, "voice_name": spec.name, "sources": sources,
            "gpt_config": dataclasses.asdict(gpt.config), "sovits_config": dataclasses.asdict(sovits.config),
            "bert_hidden_size": bert.hidden_size,
        })
        report(len(steps), len(steps), "done")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(outdir, ignore_errors=True)
    partial.rename(outdir)
    return outdir


def _check_against_torch(folder: Path, gpt, sovits, sv_model: ERes2NetV2 | None) -> None:
    """One prefill, one step, one decode (and one SV embedding) through ONNX Runtime vs torch on random inputs;
    raises on a mismatch."""
    import onnxruntime as ort

    def session(name: str):
        return ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])

    generator = torch.Generator().manual_seed(0)
    phone_ids = torch.randint(0, gpt.config.phoneme_vocab_size, (1, 11), generator=generator)
    bert = torch.randn(1, gpt.config.bert_dim, 11, generator=generator)
    prompt = torch.randint(0, gpt.config.vocab_size - 1, (1, 13), generator=generator)
    with torch.inference_mode():
        cache = gpt.new_cache(64)
        expected = [gpt.prefill(phone_ids, bert, prompt, cache.row_view(0, 24))]
        expected.append(gpt.step(torch.tensor([[7]]), torch.tensor([13]), torch.tensor([24]), cache.view(1, 25)))
    prefill = session("gpt_prefill.onnx").run(None, {"phone_ids": phone_ids.numpy(), "bert": bert.numpy(),
                                                      "prompt": prompt.numpy()})
    layers = gpt.config.num_layers
    past = dict(zip(cache_names(layers, "past"), prefill[1:]))
    step = session("gpt_step.onnx").run(None, {"token": np.array([[7]]), "position": np.array([13]), **past})
    for name, got, want in (("prefill", prefill[0], expected[0]), ("step", step[0], expected[1])):
        error = float(np.abs(got - want.numpy()).max() / max(1e-12, float(want.abs().max())))
        if error > 1e-3:
            raise AgentTTSError(f"ONNX export check failed: GPT {name} logits differ from torch by {error:.2e} "
                                "of their magnitude")
    codes = torch.randint(0, sovits.config.codebook_size, (1, 1, 15), generator=generator)
    ge = torch.randn(1, sovits.config.gin_channels, 1, generator=generator) * 0.1
    with torch.inference_mode():
        want = sovits.decode(codes, phone_ids, ge, noise_scale=0.0)[0, 0].numpy()
    got = session("sovits_decoder.onnx").run(None, {
        "codes": codes.numpy(), "phone_ids": phone_ids.numpy(), "ge": ge.numpy(),
        "noise": np.zeros((1, sovits.config.inter_channels, 30), np.float32),
        "noise_scale": np.array([0.0], np.float32), "frames": np.array([30])})[0][0, 0]
    noise = float(((got - want) ** 2).sum())
    snr = 10 * np.log10(float((want ** 2).sum()) / noise) if noise > 0 else float("inf")
    if snr < 40:
        raise AgentTTSError(f"ONNX export check failed: SoVITS decoder SNR {snr:.1f} dB against torch")
    if sv_model is not None:
        fbank = torch.randn(1, 150, MEL_BINS, generator=generator) - 8.0
        with torch.inference_mode():
            want = sv_model(fbank).numpy()
        got = session(SV_GRAPH).run(None, {"fbank": fbank.numpy()})[0]
        error = float(np.abs(got - want).max() / max(1e-12, float(np.abs(want).max())))
        if error > 1e-3:
            raise AgentTTSError(f"ONNX export check failed: the speaker-verification embedding differs from torch "
                                f"by {error:.2e} of its magnitude")
