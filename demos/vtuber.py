"""A live streamer's voice: chat lines read aloud in the streamer's voice, paid messages first.

    python demos/vtuber.py                          # lines typed on stdin, "user: message"
    python demos/vtuber.py --file chat.log          # follow a file as it grows (like tail -f)
    python demos/vtuber.py --websocket ws://localhost:8765   # one chat line per message
    python demos/vtuber.py --voice my_streamer      # your GPT-SoVITS voice (agent-tts voices add ...)

Rules (agent_tts/chat_queue.py): "$5 ..." or "[SC] ..." (paid) and "!say ..."
(moderator) lines go first and cut off the line being read (barge-in); lines
with nothing speakable, repeats, and floods from one user are skipped, with a
note; a full queue drops its oldest line; long lines are cut. Each line prints
its first-audio time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))

from pipecat.frames.frames import EndFrame, InterruptionFrame, TTSSpeakFrame  # noqa: E402
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from agent_tts.audio.devices import device_choice  # noqa: E402
from agent_tts.chat_queue import ChatQueue, Verdict  # noqa: E402
from agent_tts.cli.engine_arguments import add_compute_arguments  # noqa: E402
from agent_tts.conversation.stdin import stdin_lines  # noqa: E402
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport, SoundDeviceTransportParams  # noqa: E402
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService  # noqa: E402
from agent_tts.pipecat.turn_timing import TurnTimer  # noqa: E402
from llm_to_speaker import TurnDone  # noqa: E402

OUTPUT_RATE = 24000


async def file_lines(path: Path, poll_s: float = 0.2) -> AsyncIterator[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(0, 2)  # only new lines, like tail -f
        while True:
            line = handle.readline()
            if line:
                yield line
            else:
                await asyncio.sleep(poll_s)


async def websocket_lines(url: str) -> AsyncIterator[str]:
    from websockets.asyncio.client import connect

    async with connect(url) as socket:
        async for message in socket:
            yield message if isinstance(message, str) else message.decode("utf-8", "replace")


async def read_aloud(lines: AsyncIterator[str], tts: GPTSoVITSTTSService, transport: SoundDeviceTransport,
                     chat: ChatQueue, timer: TurnTimer, log=print) -> None:
    """Speak chat lines as they come, by the queue's rules, until the source ends and the queue is empty."""
    done = TurnDone()
    pipeline = Pipeline([tts, done, transport.output()])
    worker = PipelineWorker(pipeline, params=PipelineParams(audio_out_sample_rate=OUTPUT_RATE), observers=[timer],
                            cancel_on_idle_timeout=False)
    wake = asyncio.Event()
    source_done = asyncio.Event()

    async def take_lines() -> None:
        async for raw in lines:
            decision = chat.offer(raw)
            if decision.verdict is Verdict.SKIPPED:
                log(f"  skipped ({decision.reason}): {raw.strip()[:60]}")
                continue
            if decision.verdict is Verdict.BARGE_IN:
                log(f"  priority line, interrupting: {decision.line.text[:60]}")
                await worker.queue_frame(InterruptionFrame())
                done.spoken.set()
            wake.set()
        source_done.set()
        wake.set()

    async def speak() -> None:
        while True:
            line = chat.next_line()
            if line is None:
                if source_done.is_set():
                    break
                wake.clear()
                await wake.wait()
                continue
            done.spoken.clear()
            log(f"reading: {line.text}")
            await worker.queue_frame(TTSSpeakFrame(line.text))
            await done.spoken.wait()
        timer.flush()
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), take_lines(), speak())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--file", type=Path, help="follow this chat log")
    source.add_argument("--websocket", metavar="URL", help="read chat messages from this websocket")
    parser.add_argument("--voice", help="a registered voice name or a voice TOML")
    add_compute_arguments(parser)
    parser.add_argument("--output-device", help="speaker name or index")
    args = parser.parse_args(argv)
    lines = file_lines(args.file) if args.file else websocket_lines(args.websocket) if args.websocket else stdin_lines()
    device = device_choice(args.output_device)
    transport = SoundDeviceTransport(SoundDeviceTransportParams(
        audio_out_enabled=True, audio_out_sample_rate=OUTPUT_RATE, output_device=device))
    print("agent-tts VTuber voice: type chat lines as 'user: message' ($5 ... or !say ... go first); Ctrl-D ends",
          flush=True)
    tts = GPTSoVITSTTSService(voice=args.voice, device=args.device, precision=args.precision)
    asyncio.run(read_aloud(lines, tts, transport, ChatQueue(), TurnTimer()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
