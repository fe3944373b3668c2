"""Microphone -> VAD -> STT -> LLM -> TTS -> speaker, with barge-in: a local voice agent.

    python pipelines/voice_agent.py                       # offline: scripted FAQ answers, bundled voice
    python pipelines/voice_agent.py --llm-url http://localhost:11434/v1 --llm-model llama3.2 --voice alice

Speech is detected by the WebRTC VAD; speaking while the agent talks stops it
at once (the transport runs the same VAD on the microphone's audio thread and
silences the speaker there; then the TTS stops generating and the speaker's
buffers are flushed) and the agent answers the new turn, with only the words
it had played in its context (word timestamps, and `HeardTextGuard` for the
words an interruption overtakes). Speech is transcribed by local Whisper
(faster-whisper) when installed. Each turn prints its first-audio and
first-sound times, counted from the end of the user's speech.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from agent_tts.audio.devices import device_choice
from agent_tts.cli.engine_arguments import add_compute_arguments
from agent_tts.pipecat.heard_text import HeardTextGuard
from agent_tts.pipecat.services import SYSTEM_PROMPT, make_llm, make_stt
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport, SoundDeviceTransportParams
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService
from agent_tts.pipecat.turn_timing import TurnTimer
from agent_tts.pipecat.webrtc_vad import WebRTCVADAnalyzer

INPUT_RATE = 16000
# Silence after the VAD's own 0.2 s that ends the user's turn.
END_OF_TURN_SILENCE_S = 0.5


def build(transport: SoundDeviceTransport, stt: FrameProcessor | None, llm: FrameProcessor,
          tts: GPTSoVITSTTSService, vad_mode: int = 3, system_prompt: str = SYSTEM_PROMPT,
          end_of_turn_silence_s: float = END_OF_TURN_SILENCE_S, early_barge_in: bool = True,
          context: LLMContext | None = None, before_context: Sequence[FrameProcessor] = ()) -> Pipeline:
    """The agent's pipeline. The WebRTC VAD in the user aggregator starts turns and interrupts the bot; a turn
    ends after `end_of_turn_silence_s` of silence once Whisper's transcript is in (no turn model to run on
    the CPU). With `early_barge_in`, the transport runs the same VAD (mode and parameters) in its microphone
    callback and silences the speaker where speech starts, before the interruption crosses the pipeline.
    `context`: the conversation (a new one with the system prompt by default); `before_context`: processors
    between the speaker and the assistant context (a transcript logger, say)."""
    vad = WebRTCVADAnalyzer(mode=vad_mode)
    if early_barge_in:
        transport.params.barge_in_vad_mode = vad_mode
        transport.params.barge_in_vad_params = vad.params
    context = context or LLMContext([{"role": "system", "content": system_prompt}])
    strategies = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=end_of_turn_silence_s,
                                                                            wait_for_transcript=stt is not None)])
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=vad,
                                                     user_turn_strategies=strategies))
    stages = [transport.input(), stt, aggregators.user(), llm, tts, transport.output(),
              HeardTextGuard(aggregators.assistant()), *before_context, aggregators.assistant()]
    return Pipeline([stage for stage in stages if stage is not None])


def transport_params(input_device=None, output_device=None, output_rate: int = 24000) -> SoundDeviceTransportParams:
    # 10 ms device blocks: on barge-in at most a few blocks already handed to the device still play.
    return SoundDeviceTransportParams(audio_in_enabled=True, audio_in_sample_rate=INPUT_RATE,
                                      audio_out_enabled=True, audio_out_sample_rate=output_rate,
                                      input_device=device_choice(input_device), output_device=device_choice(output_device),
                                      block_ms=10)


def pipeline_params(params: SoundDeviceTransportParams) -> PipelineParams:
    """Pipeline rates equal to the transport's, so nothing is resampled twice."""
    return PipelineParams(enable_metrics=True, audio_in_sample_rate=params.audio_in_sample_rate,
                          audio_out_sample_rate=params.audio_out_sample_rate)


async def run(pipeline: Pipeline, timer: TurnTimer, params: SoundDeviceTransportParams) -> None:
    worker = PipelineWorker(pipeline, params=pipeline_params(params), observers=[timer],
                            cancel_on_idle_timeout=False)
    runner = WorkerRunner()
    await runner.add_workers(worker)
    await runner.run()


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voice", help="a registered voice name or a voice TOML (default: yours, else the bundled one)")
    add_compute_arguments(parser)
    parser.add_argument("--llm-url", help="an OpenAI-compatible base URL, e.g. http://localhost:11434/v1")
    parser.add_argument("--llm-model", help="the model name at that URL")
    parser.add_argument("--input-device", help="microphone name or index")
    parser.add_argument("--output-device", help="speaker name or index")
    parser.add_argument("--vad-mode", type=int, default=3, choices=(0, 1, 2, 3), help="WebRTC VAD aggressiveness")
    parser.add_argument("--end-of-turn-silence", type=float, default=END_OF_TURN_SILENCE_S, metavar="SECONDS",
                        help=f"silence that ends your turn, after the VAD's 0.2 s (default {END_OF_TURN_SILENCE_S})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--stt-model", help="a faster-whisper model name or folder (default: bundled tiny.en)")
    args = parser.parse_args(argv)
    params = transport_params(args.input_device, args.output_device)
    transport = SoundDeviceTransport(params)
    tts = GPTSoVITSTTSService(voice=args.voice, device=args.device, precision=args.precision)
    pipeline = build(transport, make_stt(args.stt_model), make_llm(args.llm_url, args.llm_model), tts, args.vad_mode,
                     end_of_turn_silence_s=args.end_of_turn_silence)
    print("agent-tts voice agent: speak; Ctrl-C to quit", flush=True)
    asyncio.run(run(pipeline, TurnTimer(), params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
