"""What a voice derives from its reference clips, once at load: one function per fact, and the record that holds them.

The facts, each made the way upstream makes it (``TTS._set_prompt_semantic``,
``TTS._get_ref_spec``, ``SynthesizerTrn.decode``'s ``get_ge``):

* prompt codes: the main clip read at 16 kHz through soxr (librosa's path),
  0.3 s of zeros counted at the model's rate appended, HuBERT, SoVITS
  ``ssl_proj`` + VQ (:func:`prompt_waveform_16k`);
* per clip, main and auxiliary: the clip at the model's rate (a
  torchaudio-style sinc resample when it is not), peak-limited to [-1, 1]
  (:func:`reference_waveform`); its linear spectrogram
  (:func:`reference_spectrogram`); for v2Pro/v2ProPlus that same audio
  sinc-resampled to 16 kHz (:func:`speaker_verification_input`), its Kaldi
  filterbank and the ERes2NetV2 embedding; the clip's speaker vector ``ge``;
* the voice's ``ge``: the mean of the clips' vectors, each taken after its
  own PReLU (:func:`mean_speaker_vector`);
* the reference text's phonemes and phone-level BERT features.

A backend supplies the models as :class:`ReferenceEncoders` (torch modules
here, ONNX sessions in ``onnx/runtime.py``); :func:`derive_reference_features`
is the one place that puts the facts together, for both backends. Parity
calls the fact functions one by one to compare each stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from agent_tts.audio.clip import load_clip, read_clip
from agent_tts.audio.sinc_resample import sinc_resample
from agent_tts.errors import AgentTTSError, ReferenceAudioError
from agent_tts.models.fbank import FRAME_SAMPLES, SAMPLE_RATE as SV_SAMPLE_RATE, kaldi_fbank
from agent_tts.models.sovits import SoVITSConfig, SoVITSModel
from agent_tts.models.spectrogram import linear_spectrogram
from agent_tts.text.bert_features import phone_level_bert
from agent_tts.text.frontend import TextFrontend
from agent_tts.text.phonemes import Phonemes

if TYPE_CHECKING:
    from agent_tts.models.pretrained import BertFeatureExtractor, HubertFeatureExtractor
    from agent_tts.models.speaker_verification import ERes2NetV2
    from agent_tts.voice import VoiceSpec

MIN_REFERENCE_SECONDS = 3.0
MAX_REFERENCE_SECONDS = 10.0
# The reference pads the 16 kHz prompt with 0.3 s of zeros counted at the model's rate.
PROMPT_PAD_SECONDS = 0.3
HUBERT_RATE = 16000


def prompt_waveform_16k(path: str | Path, model_rate: int) -> np.ndarray:
    """The reference clip at 16 kHz with the reference's trailing zeros (HuBERT's input)."""
    wav16k = load_clip(path, HUBERT_RATE)
    return np.concatenate([wav16k, np.zeros(int(model_rate * PROMPT_PAD_SECONDS), np.float32)])


def checked_prompt_waveform(path: str | Path, model_rate: int) -> np.ndarray:
    """:func:`prompt_waveform_16k`, after checking that the clip is 3-10 s long."""
    wav16k = prompt_waveform_16k(path, model_rate)
    seconds = (len(wav16k) - int(model_rate * PROMPT_PAD_SECONDS)) / HUBERT_RATE
    if not MIN_REFERENCE_SECONDS <= seconds <= MAX_REFERENCE_SECONDS:
        raise ReferenceAudioError(f"{path}: reference clip is {seconds:.1f} s; use one of "
                                  f"{MIN_REFERENCE_SECONDS:g}-{MAX_REFERENCE_SECONDS:g} s")
    return wav16k


def reference_waveform(path: str | Path, model_rate: int) -> torch.Tensor:
    """The clip at the model's rate [1, samples] (sinc-resampled if needed), divided down when it peaks above 1."""
    audio, rate = read_clip(path)
    wav = sinc_resample(torch.from_numpy(audio)[None], rate, model_rate)
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    if peak > 1:
        wav = wav / min(2.0, peak)
    return wav


def reference_spectrogram(waveform: torch.Tensor, config: SoVITSConfig) -> torch.Tensor:
    """Linear spectrogram [1, bins, frames] of :func:`reference_waveform`'s audio."""
    return linear_spectrogram(waveform, config.filter_length, config.hop_length, config.win_length)


def speaker_verification_input(waveform: torch.Tensor, model_rate: int, path: str | Path = "") -> torch.Tensor:
    """:func:`reference_waveform`'s audio sinc-resampled to 16 kHz [samples]: the SV model's input (not HuBERT's)."""
    wav16k = sinc_resample(waveform, model_rate, SV_SAMPLE_RATE).reshape(-1)
    if wav16k.numel() < FRAME_SAMPLES:
        raise ReferenceAudioError(f"{path}: reference clip too short for the speaker-verification model (under 25 ms)")
    return wav16k


def mean_speaker_vector(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The voice's ``ge`` from its clips' vectors [1, gin, 1] (upstream averages after each clip's PReLU)."""
    return torch.stack(list(vectors)).mean(dim=0)


def reference_phonemes(text: str, language: str, frontend: TextFrontend, voice_name: str) -> Phonemes:
    """The reference text's phonemes; an error when it has nothing to read."""
    phonemes = frontend(text, language)
    if not phonemes.phones or phonemes.is_silent:
        raise AgentTTSError(f"voice {voice_name!r}: the reference text {text!r} has nothing to read")
    return phonemes


class ReferenceEncoders(Protocol):
    """The models a backend runs on reference clips (torch modules, or ONNX Runtime sessions)."""

    def prompt_codes(self, wav16k: np.ndarray) -> torch.Tensor:
        """HuBERT's 16 kHz input [samples] -> semantic codes [1, P]."""

    def sv_embedding(self, fbank: torch.Tensor) -> torch.Tensor:
        """Kaldi filterbank [frames, 80] -> the ERes2NetV2 embedding [1, 20480] (v2Pro/v2ProPlus)."""

    def speaker_embedding(self, spectrogram: torch.Tensor, sv_embedding: torch.Tensor | None) -> torch.Tensor:
        """Spectrogram [1, bins, frames] (+ SV embedding for v2Pro) -> one clip's ``ge`` [1, gin, 1]."""


class TorchReferenceEncoders:
    """:class:`ReferenceEncoders` on the torch models, on their device."""

    def __init__(self, hubert: HubertFeatureExtractor, sovits: SoVITSModel, sv_model: ERes2NetV2 | None,
                 device: torch.device) -> None:
        self.hubert, self.sovits, self.sv_model, self.device = hubert, sovits, sv_model, device

    def prompt_codes(self, wav16k: np.ndarray) -> torch.Tensor:
        return self.sovits.extract_latent(self.hubert(torch.from_numpy(wav16k).to(self.device)[None]))[0, :1]

    def sv_embedding(self, fbank: torch.Tensor) -> torch.Tensor:
        if self.sv_model is None:
            raise AgentTTSError("this voice has no speaker-verification model loaded")
        return self.sv_model(fbank.to(self.device)[None])

    def speaker_embedding(self, spectrogram: torch.Tensor, sv_embedding: torch.Tensor | None) -> torch.Tensor:
        sv = None if sv_embedding is None else sv_embedding.to(self.device)
        return self.sovits.speaker_embedding(spectrogram.to(self.device), sv)


@dataclass(frozen=True)
class ClipSpeaker:
    """One reference clip's speaker vector and, for v2Pro/v2ProPlus, the SV embedding it was made from."""

    ge: torch.Tensor                   # [1, gin, 1]
    sv_embedding: torch.Tensor | None  # [1, 20480]


def clip_speaker(path: str | Path, encoders: ReferenceEncoders, config: SoVITSConfig) -> ClipSpeaker:
    """A clip's spectrogram, SV embedding (v2Pro) and ``ge``, from the clip file."""
    waveform = reference_waveform(path, config.sampling_rate)
    sv = None
    if config.uses_speaker_verification:
        sv = encoders.sv_embedding(kaldi_fbank(speaker_verification_input(waveform, config.sampling_rate, path)))
    return ClipSpeaker(encoders.speaker_embedding(reference_spectrogram(waveform, config), sv), sv)


@dataclass(frozen=True)
class ReferenceFeatures:
    """Everything a voice derives from its reference clips, computed once and reused for every sentence."""

    prompt_codes: torch.Tensor                # [1, P] semantic tokens of the main clip
    ge: torch.Tensor                          # [1, gin, 1] speaker vector: the mean over the clips
    clips: tuple[ClipSpeaker, ...]            # main clip first, then the auxiliary ones
    ref_phonemes: Phonemes
    ref_bert: torch.Tensor                    # [1024, n_ref_phones]


def derive_reference_features(spec: VoiceSpec, encoders: ReferenceEncoders, bert: BertFeatureExtractor,
                              frontend: TextFrontend, config: SoVITSConfig,
                              device: torch.device | str = "cpu") -> ReferenceFeatures:
    """Every reference fact of a voice through one backend's encoders and BERT (torch's, or its ONNX counterpart)."""
    with torch.inference_mode():
        prompt_codes = encoders.prompt_codes(checked_prompt_waveform(spec.ref_audio, config.sampling_rate))
        clips = tuple(clip_speaker(path, encoders, config) for path in (spec.ref_audio, *spec.aux_ref_audio))
        ref_phonemes = reference_phonemes(spec.ref_text, spec.ref_language, frontend, spec.name)
        ref_bert = phone_level_bert(bert, ref_phonemes).to(device)
    return ReferenceFeatures(prompt_codes.to(device), mean_speaker_vector([clip.ge for clip in clips]).to(device),
                             clips, ref_phonemes, ref_bert)
