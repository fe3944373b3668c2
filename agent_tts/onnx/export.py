"""Export a voice's models to ONNX: the GPT (prefill + one-step graphs), the SoVITS decoder, HuBERT and BERT.

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
from agent_tts.models.checkpoints import load_gpt, load_sovits, read_gpt_checkpoint
from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
from agent_tts.onnx.graphs import (BertGraph, GPTPrefillGraph, GPTStepGraph, PromptCodesGraph, SoVITSDecoderGraph,
                                   SpeakerEncoderGraph, cache_names)
from agent_tts.onnx.manifest import (EXPORT_FORMAT, GRAPH_FILES, TOKENIZER_FOLDER, fingerprint, sources_digest,
                                     stamp_graph, write_manifest)
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


def voice_sources(spec: VoiceSpec) -> dict[str, Path]:
    """The files an export is made from, by name."""
    return {"gpt": spec.gpt, "sovits": spec.sovits, "hubert": spec.hubert, "bert": spec.bert}


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


def export_voice(spec: VoiceSpec, outdir: str | Path, progress: Progress | None = None) -> Path:
    """Write the six graphs, the BERT tokenizer and `manifest.json` to `outdir`; returns it."""
    outdir = Path(outdir)
    partial = outdir.with_name(outdir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    steps = ["hashing the source files", "loading the models", "exporting the GPT prefill graph",
             "exporting the GPT step graph", "exporting the SoVITS decoder", "exporting HuBERT (prompt codes)",
             "exporting the speaker encoder", "exporting BERT", "stamping and checking the graphs against torch"]
    report = progress or (lambda done, total, label: None)

    def step(index: int) -> None:
        report(index, len(steps), steps[index] if index < len(steps) else "done")

    try:
        step(0)
        sources = {name: {"path": str(path.resolve()), "files": fingerprint(path)}
                   for name, path in voice_sources(spec).items()}
        step(1)
        raw_gpt = read_gpt_checkpoint(spec.gpt)
        version = raw_gpt.version
        gpt, sovits = load_gpt(raw_gpt), load_sovits(spec.sovits)
        del raw_gpt
        hubert = HubertFeatureExtractor.from_folder(spec.hubert).eval()
        bert = BertFeatureExtractor.from_folder(spec.bert).eval()
        layers, dim = gpt.config.num_layers, gpt.config.hidden_dim

        step(2)
        n_text, n_prompt = 7, 9
        present = cache_names(layers, "present")
        _export(GPTPrefillGraph(gpt), (torch.randint(0, 300, (1, n_text)), torch.randn(1, gpt.config.bert_dim, n_text),
                                       torch.randint(0, 1000, (1, n_prompt))),
                partial / "gpt_prefill.onnx", ["phone_ids", "bert", "prompt"], ["logits", *present],
                {"phone_ids": {1: "text"}, "bert": {2: "text"}, "prompt": {1: "prompt"},
                 **{name: {1: "positions"} for name in present}})
        step(3)
        past = cache_names(layers, "past")
        _export(GPTStepGraph(gpt), (torch.tensor([[5]]), torch.tensor([9]), *[torch.randn(1, 16, dim) for _ in past]),
                partial / "gpt_step.onnx", ["token", "position", *past], ["logits", *cache_names(layers, "new")],
                {name: {1: "length"} for name in past})
        step(4)
        config = sovits.config
        decoder_inputs = (torch.randint(0, config.codebook_size, (1, 1, 12)), torch.randint(0, 300, (1, n_text)),
                          torch.randn(1, config.gin_channels, 1), torch.randn(1, config.inter_channels, 30),
                          torch.tensor([0.5]), torch.tensor([24]))
        _export(SoVITSDecoderGraph(sovits), decoder_inputs, partial / "sovits_decoder.onnx",
                ["codes", "phone_ids", "ge", "noise", "noise_scale", "frames"], ["wav"],
                {"codes": {2: "tokens"}, "phone_ids": {1: "phones"}, "noise": {2: "noise_frames"},
                 "wav": {2: "samples"}})
        step(5)
        _export(PromptCodesGraph(hubert, sovits), (torch.randn(1, 32000),), partial / "prompt_codes.onnx",
                ["wav16k"], ["codes"], {"wav16k": {1: "samples"}, "codes": {1: "tokens"}})
        step(6)
        _export(SpeakerEncoderGraph(sovits), (torch.randn(1, sovits.config.filter_length // 2 + 1, 100),),
                partial / "speaker_encoder.onnx", ["spectrogram"], ["ge"], {"spectrogram": {2: "frames"}})
        step(7)
        ids = bert.tokenizer("你好世界", return_tensors="pt")
        bert_inputs = ["input_ids", "attention_mask", "token_type_ids"]
        _export(BertGraph(bert), tuple(ids[name] for name in bert_inputs), partial / "bert.onnx", bert_inputs,
                ["hidden"], {name: {1: "tokens"} for name in [*bert_inputs, "hidden"]})
        bert.tokenizer.save_pretrained(str(partial / TOKENIZER_FOLDER))

        step(8)
        digest = sources_digest(sources)
        for name in GRAPH_FILES:
            stamp_graph(partial / name, version, digest)
        _check_against_torch(partial, gpt, sovits)
        write_manifest(partial, {
            "format": EXPORT_FORMAT, "agent_tts_version": __version__, "voice_version": version,
            "sources_sha256": digest, "opset": OPSET,
            "torch_version": torch.__version__, "voice_name": spec.name, "sources": sources,
            "gpt_config": dataclasses.asdict(gpt.config), "sovits_config": dataclasses.asdict(sovits.config),
            "bert_hidden_size": bert.hidden_size,
        })
        step(9)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(outdir, ignore_errors=True)
    partial.rename(outdir)
    return outdir


def _check_against_torch(folder: Path, gpt, sovits) -> None:
    """One prefill, one step and one decode through ONNX Runtime vs torch on random inputs; raises on a mismatch."""
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
