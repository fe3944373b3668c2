"""`WebRTCVADAnalyzer`: pipecat voice activity detection over `webrtcvad`, a light alternative to Silero.

`SpeechOnsets` runs the same analyzer synchronously, block by block, on the
thread that captures the audio: the transport uses it to silence the speaker
at the instant the pipeline's VAD will see speech start, without waiting for
the event loop.
"""

from __future__ import annotations

import webrtcvad
from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

SAMPLE_RATES = (8000, 16000, 32000, 48000)
FRAME_MS = (10, 20, 30)


class WebRTCVADAnalyzer(VADAnalyzer):
    """Voice activity from the WebRTC VAD: `mode` 0 (least aggressive) to 3 (most), frames of 10, 20 or 30 ms.

    The WebRTC VAD answers speech / not speech per frame; that is reported as
    confidence 1 or 0, so pipecat's start/stop timing (`VADParams.start_secs`,
    `stop_secs`) and volume gate work as with any analyzer.
    """

    def __init__(self, *, mode: int = 2, frame_ms: int = 20, sample_rate: int | None = None,
                 params: VADParams | None = None) -> None:
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"WebRTC VAD mode must be 0, 1, 2 or 3, got {mode}")
        if frame_ms not in FRAME_MS:
            raise ValueError(f"WebRTC VAD frames must be 10, 20 or 30 ms, got {frame_ms}")
        if sample_rate is not None and sample_rate not in SAMPLE_RATES:
            raise ValueError(f"WebRTC VAD needs 8000, 16000, 32000 or 48000 Hz audio, got {sample_rate}")
        self._vad = webrtcvad.Vad(mode)
        self.mode = mode
        self.frame_ms = frame_ms
        super().__init__(sample_rate=sample_rate, params=params)

    def set_sample_rate(self, sample_rate: int) -> None:
        rate = self._init_sample_rate or sample_rate
        if rate not in SAMPLE_RATES:
            raise ValueError(f"WebRTC VAD needs 8000, 16000, 32000 or 48000 Hz audio, got {rate}; "
                             "set the transport's audio_in_sample_rate to one of them")
        super().set_sample_rate(sample_rate)

    def num_frames_required(self) -> int:
        return self.sample_rate * self.frame_ms // 1000

    def voice_confidence(self, buffer: bytes) -> float:
        try:
            return 1.0 if self._vad.is_speech(buffer, self.sample_rate) else 0.0
        except Exception as exc:  # noqa: BLE001 - a malformed frame is not speech
            logger.warning(f"WebRTC VAD could not read a frame of {len(buffer)} bytes: {exc}")
            return 0.0


class SpeechOnsets:
    """Where speech starts in a stream of audio blocks, decided as pipecat's `VADController` decides it.

    `feed(pcm)` returns True for the block in which the analyzer's state first
    reaches SPEAKING after QUIET (STARTING and STOPPING are passed through, as
    the controller does), so on the same audio with the same mode and
    `VADParams` it fires on the same block as the pipeline's user aggregator.
    It runs pipecat's own state machine (`VADAnalyzer._run_analyzer`) directly,
    on the caller's thread, instead of on the analyzer's executor.
    """

    def __init__(self, analyzer: VADAnalyzer, sample_rate: int) -> None:
        if not callable(getattr(analyzer, "_run_analyzer", None)):
            raise TypeError("this pipecat's VADAnalyzer has no _run_analyzer; early barge-in needs pipecat 1.14's")
        analyzer.set_sample_rate(sample_rate)
        self._analyzer = analyzer
        self._speaking = False

    def feed(self, pcm: bytes) -> bool:
        state = self._analyzer._run_analyzer(pcm)
        if state == VADState.SPEAKING and not self._speaking:
            self._speaking = True
            return True
        if state == VADState.QUIET:
            self._speaking = False
        return False
