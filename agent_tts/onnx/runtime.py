"""The exported graphs on ONNX Runtime, behind the interfaces the engine already drives.

`OnnxText2Semantic` has the GPT's `prefill`/`step`/`new_cache`, `OnnxSoVITSDecoder`
the SoVITS `decode`, `OnnxBertFeatureExtractor` the BERT extractor's call, so
`generate_semantic_tokens`, `ChunkedDecoder` and `Synthesizer` run unchanged on
either backend. The KV cache lives in two preallocated buffers per stream on
the session's device (numpy on the CPU, `OrtValue`s on CUDA); through
IOBinding each step reads the cache's prefix in place and writes its new
position straight into the buffer, so nothing is copied or grown per step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from agent_tts.errors import AgentTTSError
from agent_tts.models.pretrained import per_phone_features
from agent_tts.models.sovits import SoVITSConfig
from agent_tts.models.t2s import T2SConfig
from agent_tts.onnx.graphs import cache_names
from agent_tts.onnx.manifest import SV_GRAPH, TOKENIZER_FOLDER, ExportManifest, check_stamp, graph_files

FLOAT_BYTES = 4
GPU_INSTALL = (".venv/bin/pip uninstall -y onnxruntime && .venv/bin/pip install onnxruntime-gpu "
               "(see the README, 'ONNX Runtime on a GPU')")


@dataclass(frozen=True)
class OrtDevice:
    """Where the sessions run and the KV cache lives: ``cpu`` or ``cuda`` with an index."""

    kind: str = "cpu"
    index: int = 0

    @classmethod
    def from_torch(cls, device: str | torch.device) -> "OrtDevice":
        device = torch.device(device)
        if device.type not in ("cpu", "cuda"):
            raise AgentTTSError(f"the ONNX backend runs on cpu or cuda, not {device.type}")
        return cls(device.type, device.index or 0)

    def providers(self) -> list:
        import onnxruntime as ort

        if self.kind == "cpu":
            return ["CPUExecutionProvider"]
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise AgentTTSError(f"the ONNX backend on cuda needs onnxruntime-gpu; this onnxruntime offers "
                                f"{', '.join(available)}. Install it with: {GPU_INSTALL}")
        return [("CUDAExecutionProvider", {"device_id": self.index}), "CPUExecutionProvider"]


def open_session(export: ExportManifest, name: str, device: OrtDevice):
    """An ORT session for one graph of the export, after checking that the graph belongs to it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    path = export.folder / name
    session = ort.InferenceSession(str(path), options, providers=device.providers())
    check_stamp(session.get_modelmeta().custom_metadata_map, path, export)
    return session


class DeviceBuffer:
    """A zero-initialised float32 buffer [layers, 1, positions, dim] on the device, addressed by (layer, position)."""

    def __init__(self, shape: tuple[int, int, int, int], device: OrtDevice) -> None:
        self.shape = shape
        self._array: np.ndarray | None = None
        if device.kind == "cpu":
            self._array = np.zeros(shape, np.float32)
            self.pointer = self._array.ctypes.data
        else:
            import onnxruntime as ort

            self._value = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), np.float32, "cuda", device.index)
            self.pointer = self._value.data_ptr()

    def address(self, layer: int, position: int) -> int:
        _, _, positions, dim = self.shape
        return self.pointer + (layer * positions + position) * dim * FLOAT_BYTES

    def numpy(self) -> np.ndarray:
        """The buffer's contents (a view on the CPU, a copy from CUDA)."""
        return self._array if self._array is not None else self._value.numpy()


class OnnxKVCache:
    """One row's keys and values of every layer, preallocated to ``max_len`` positions, and its logits buffer,
    so that rows decoding at once on one voice share nothing."""

    def __init__(self, layers: int, dim: int, max_len: int, vocab_size: int, device: OrtDevice) -> None:
        self.keys = DeviceBuffer((layers, 1, max_len, dim), device)
        self.values = DeviceBuffer((layers, 1, max_len, dim), device)
        self.logits = np.zeros((1, vocab_size), np.float32)
        self.max_len = max_len


class OnnxBatchCache:
    """The rows of a `BatchDecoder` on ONNX Runtime: one `OnnxKVCache` per row, each sized when its row is filled.

    Same bookkeeping as the torch `KVCache` (``lengths``, ``max_len``, ``rows``,
    `resized`, `move_row`); a row moves by handing over its buffers, no copy.
    """

    def __init__(self, gpt: "OnnxText2Semantic", max_len: int, rows: int) -> None:
        self.gpt = gpt
        self.max_len = max_len
        self.row_caches: list[OnnxKVCache | None] = [None] * rows
        self.lengths = [0] * rows

    @property
    def rows(self) -> int:
        return len(self.row_caches)

    @property
    def length(self) -> int:
        return self.lengths[0]

    def row_view(self, row: int, kv_len: int) -> OnnxKVCache:
        """Row ``row``'s buffers, holding at least this cache's ``max_len`` positions."""
        if kv_len > self.max_len:
            raise RuntimeError(f"KV cache full: {kv_len} > {self.max_len} positions")
        cache = self.row_caches[row]
        if cache is None or cache.max_len < self.max_len:
            config = self.gpt.config
            cache = self.row_caches[row] = OnnxKVCache(config.num_layers, config.hidden_dim, self.max_len,
                                                       config.vocab_size, self.gpt.device)
        return cache

    def prefill_view(self, first: int, count: int, length: int) -> OnnxKVCache:
        """Row ``first``'s buffers for its prefill (ONNX Runtime prefills one row at a time)."""
        if count != 1:
            raise ValueError("ONNX Runtime's GPT prefills one row at a time")
        return self.row_view(first, length)

    def resized(self, max_len: int, rows: int) -> "OnnxBatchCache":
        self.max_len = max(self.max_len, max_len)
        if rows > self.rows:
            self.row_caches += [None] * (rows - self.rows)
            self.lengths += [0] * (rows - len(self.lengths))
        return self

    def move_row(self, source: int, target: int) -> None:
        self.row_caches[target], self.row_caches[source] = self.row_caches[source], self.row_caches[target]
        self.lengths[target] = self.lengths[source]

    def reset(self) -> None:
        self.lengths = [0] * self.rows


def _int64(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.int64))


class OnnxText2Semantic:
    """The GPT on ONNX Runtime: a prefill graph and a one-token step graph over per-row `OnnxKVCache` buffers.

    It drives like the torch GPT in a `BatchDecoder` (`new_cache`, `prefill`,
    and `make_step_runner` for the batched step); the rows of a step run one
    after another through the step graph, which decodes one sequence.
    """

    compute_dtype = torch.float32

    def __init__(self, export: ExportManifest, device: OrtDevice) -> None:
        self.config = config = T2SConfig(**export.record["gpt_config"])
        self.device = device
        self._prefill = open_session(export, "gpt_prefill.onnx", device)
        self._step = open_session(export, "gpt_step.onnx", device)
        self._present = cache_names(config.num_layers, "present")
        self._past = cache_names(config.num_layers, "past")
        self._new = cache_names(config.num_layers, "new")

    def new_cache(self, max_len: int, rows: int = 1) -> OnnxBatchCache:
        return OnnxBatchCache(self, max_len, rows)

    def make_step_runner(self) -> "OnnxStep":
        return OnnxStep(self)

    def _bind_cache(self, binding, names: list[str], cache: OnnxKVCache, start: int, count: int, output: bool) -> None:
        bind = binding.bind_output if output else binding.bind_input
        shape = [1, count, self.config.hidden_dim]
        for index, name in enumerate(names):
            buffer = cache.keys if index % 2 == 0 else cache.values
            bind(name, self.device.kind, self.device.index, np.float32, shape, buffer.address(index // 2, start))

    @staticmethod
    def _run(session, binding, cache: OnnxKVCache) -> torch.Tensor:
        logits = cache.logits
        binding.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
        session.run_with_iobinding(binding)
        return torch.from_numpy(logits.copy())

    def prefill(self, phone_ids: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                cache: OnnxKVCache) -> torch.Tensor:
        """Text + prompt into an empty row; returns the last position's logits [1, V]."""
        total = phone_ids.shape[1] + prompt.shape[1]
        if total > cache.max_len:
            raise RuntimeError(f"KV cache full: {total} > {cache.max_len} positions")
        binding = self._prefill.io_binding()
        binding.bind_cpu_input("phone_ids", _int64(phone_ids.cpu()))
        binding.bind_cpu_input("bert", np.ascontiguousarray(bert.detach().float().cpu().numpy()))
        binding.bind_cpu_input("prompt", _int64(prompt.cpu()))
        self._bind_cache(binding, self._present, cache, 0, total, output=True)
        return self._run(self._prefill, binding, cache)

    def step_row(self, cache: OnnxKVCache, token: int, audio_position: int, length: int) -> torch.Tensor:
        """One token at ``audio_position`` on a row holding ``length`` positions; its keys go to slot ``length``."""
        if length + 1 > cache.max_len:
            raise RuntimeError(f"KV cache full: {length + 1} > {cache.max_len} positions")
        binding = self._step.io_binding()
        binding.bind_cpu_input("token", _int64([[token]]))
        binding.bind_cpu_input("position", _int64([audio_position]))
        self._bind_cache(binding, self._past, cache, 0, length, output=False)
        self._bind_cache(binding, self._new, cache, length, 1, output=True)
        return self._run(self._step, binding, cache)


class OnnxStep:
    """The `StepRunner` of an ONNX GPT: the rows that step, one after another through the step graph."""

    def __init__(self, gpt: OnnxText2Semantic) -> None:
        self.gpt = gpt

    def __call__(self, cache: OnnxBatchCache, rows: int, tokens: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, stepping: list[int]) -> torch.Tensor:
        logits = torch.zeros(rows, self.gpt.config.vocab_size)
        token_list, position_list, slot_list = tokens.tolist(), positions.tolist(), slots.tolist()
        for row in stepping:
            logits[row] = self.gpt.step_row(cache.row_caches[row], token_list[row], position_list[row],
                                            slot_list[row])[0]
        return logits


def sovits_config_from(record: dict) -> SoVITSConfig:
    """A `SoVITSConfig` from its JSON form (lists back to tuples)."""
    def as_tuple(value):
        return tuple(as_tuple(item) for item in value) if isinstance(value, list) else value
    return SoVITSConfig(**{key: as_tuple(value) for key, value in record.items()})


class OnnxSoVITSDecoder:
    """The SoVITS decoder graph with `SoVITSModel.decode`'s signature (waveform [1, 1, samples] as torch)."""

    def __init__(self, export: ExportManifest, device: OrtDevice, session=None) -> None:
        """`session`: anything with ORT's `run(None, feeds)` over this graph (default: an ORT session)."""
        self.config = sovits_config_from(export.record["sovits_config"])
        self._session = session or open_session(export, "sovits_decoder.onnx", device)
        # Windows of lengths in multiples of this (engine/chunked_decoder.py); > 1 for a runtime that compiles
        # per input length.
        self.window_granule: int = getattr(self._session, "length_granule", 1)
        self.lengths_run: set[int] = set()  # the token counts decoded so far
        self._use = threading.Lock()
        self._in_flight = 0
        self._last_used = 0.0
        self.background_compile: threading.Thread | None = None  # see agent_tts/openvino/length_warmup.py

    def idle_for(self, seconds: float) -> bool:
        """True when no decode is running and none ended in the last `seconds` (preparation calls aside)."""
        with self._use:
            return self._in_flight == 0 and time.monotonic() - self._last_used >= seconds

    def prepare_lengths(self, lengths, ge: torch.Tensor, n_phones: int = 8) -> None:
        """Decode once at each token count in `lengths` not run yet (speaker vector `ge`), so that a runtime that
        compiles per length has done so."""
        for length in lengths:
            if length not in self.lengths_run:
                self._decode(torch.zeros(1, 1, length, dtype=torch.long), torch.ones(1, n_phones, dtype=torch.long),
                             ge, 0.0, 1.0, None, None)

    def decode(self, codes: torch.Tensor, text: torch.Tensor, ge: torch.Tensor, noise_scale: float = 0.5,
               speed: float = 1.0, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        with self._use:
            self._in_flight += 1
        try:
            return self._decode(codes, text, ge, noise_scale, speed, generator, noise)
        finally:
            with self._use:
                self._in_flight -= 1
                self._last_used = time.monotonic()

    def _decode(self, codes: torch.Tensor, text: torch.Tensor, ge: torch.Tensor, noise_scale: float, speed: float,
                generator: torch.Generator | None, noise: torch.Tensor | None) -> torch.Tensor:
        doubled = 2 * codes.shape[-1]
        frames = doubled if speed == 1 else int(doubled / speed) + 1
        if not noise_scale:
            noise = torch.zeros(1, self.config.inter_channels, frames)
        elif noise is None:
            noise = torch.randn(1, self.config.inter_channels, frames, generator=generator)
        wav = self._session.run(None, {
            "codes": _int64(codes.cpu()), "phone_ids": _int64(text.cpu()),
            "ge": np.ascontiguousarray(ge.float().cpu().numpy()),
            "noise": np.ascontiguousarray(noise[..., :frames].float().cpu().numpy()),
            "noise_scale": np.array([noise_scale], np.float32), "frames": _int64([frames])})[0]
        self.lengths_run.add(codes.shape[-1])
        return torch.from_numpy(wav)


class OnnxBertFeatureExtractor:
    """Chinese text -> phone-level BERT features [hidden, n_phones], the tokenizer in Python and BERT in ORT."""

    def __init__(self, export: ExportManifest, device: OrtDevice, session=None) -> None:
        """`session`: anything with ORT's `run(None, feeds)` over this graph (default: an ORT session)."""
        from transformers import AutoTokenizer

        self.hidden_size = int(export.record["bert_hidden_size"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(export.folder / TOKENIZER_FOLDER), local_files_only=True)
        self._session = session or open_session(export, "bert.onnx", device)

    def __call__(self, text: str, word2ph) -> torch.Tensor:
        if len(word2ph) != len(text):
            raise ValueError(f"word2ph has {len(word2ph)} entries for {len(text)} characters")
        inputs = self.tokenizer(text, return_tensors="np")
        hidden = self._session.run(None, {name: _int64(inputs[name])
                                          for name in ("input_ids", "attention_mask", "token_type_ids")})[0]
        return per_phone_features(torch.from_numpy(hidden[0, 1:-1]), text, word2ph)


class OnnxReferenceEncoders:
    """`reference.ReferenceEncoders` on ORT: prompt codes (HuBERT + SoVITS VQ), the SV embedding, the speaker vector."""

    def __init__(self, export: ExportManifest, device: OrtDevice) -> None:
        self._codes = open_session(export, "prompt_codes.onnx", device)
        self._speaker = open_session(export, "speaker_encoder.onnx", device)
        self._sv = open_session(export, SV_GRAPH, device) if SV_GRAPH in graph_files(export.version) else None

    def prompt_codes(self, wav16k: np.ndarray) -> torch.Tensor:
        """[samples] at 16 kHz -> codes [1, T]."""
        return torch.from_numpy(self._codes.run(None, {"wav16k": np.ascontiguousarray(wav16k[None], np.float32)})[0])

    def sv_embedding(self, fbank: torch.Tensor) -> torch.Tensor:
        """Kaldi filterbank [frames, 80] -> [1, 20480] (v2Pro/v2ProPlus exports)."""
        if self._sv is None:
            raise AgentTTSError("this v2 export has no speaker-verification graph")
        return torch.from_numpy(self._sv.run(None, {"fbank": fbank.float().numpy()[None]})[0])

    def speaker_embedding(self, spectrogram: torch.Tensor, sv_embedding: torch.Tensor | None) -> torch.Tensor:
        """[1, bins, frames] (and [1, 20480] for v2Pro) -> ge [1, gin, 1]."""
        inputs = {"spectrogram": spectrogram.float().numpy()}
        if sv_embedding is not None:
            inputs["sv_embedding"] = sv_embedding.float().numpy()
        return torch.from_numpy(self._speaker.run(None, inputs)[0])
