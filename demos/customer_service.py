"""A customer-support voice bot: answers from a short FAQ, speaks clause by clause, can be interrupted.

    python demos/customer_service.py            # speak to it (microphone and speaker)
    python demos/customer_service.py --text     # type questions instead; answers are spoken
    python demos/customer_service.py --llm-url http://localhost:11434/v1 --llm-model llama3.2

Offline it answers from the FAQ in agent_tts/pipecat/responders.py (orders,
delivery address, returns, opening hours). With an LLM endpoint, the FAQ goes
into the system prompt. Each turn prints its first-audio time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))

import llm_to_speaker  # noqa: E402
import voice_agent  # noqa: E402

from agent_tts.pipecat.responders import SUPPORT_FAQ, FAQResponder  # noqa: E402
from agent_tts.pipecat.scripted_llm import ScriptedLLMService  # noqa: E402
from agent_tts.pipecat.services import make_llm, make_stt  # noqa: E402
from agent_tts.pipecat.sounddevice_transport import SoundDeviceTransport  # noqa: E402
from agent_tts.pipecat.tts_service import GPTSoVITSTTSService  # noqa: E402
from agent_tts.pipecat.turn_timing import TurnTimer  # noqa: E402

SUPPORT_PROMPT = ("You are the voice of a friendly online shop's customer support. Answer in one or two short "
                  "spoken sentences, no lists or markdown. Facts you know:\n"
                  + "\n".join(f"- {entry.answer}" for entry in SUPPORT_FAQ))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    voice_agent.add_common_arguments(parser)
    parser.add_argument("--text", action="store_true", help="type the questions instead of speaking them")
    args = parser.parse_args(argv)
    llm = (make_llm(args.llm_url, args.llm_model) if args.llm_url and args.llm_model
           else ScriptedLLMService(FAQResponder(), first_token_s=0.2))
    tts = GPTSoVITSTTSService(voice=args.voice, device=args.device, precision=args.precision)
    params = voice_agent.transport_params(args.input_device, args.output_device)
    print("agent-tts customer service: " + ("type a question per line; Ctrl-D ends" if args.text
                                            else "ask a question; talk over the bot to interrupt it"), flush=True)
    if args.text:
        params.audio_in_enabled = False
        asyncio.run(llm_to_speaker.speak_prompts(llm_to_speaker.stdin_prompts(), tts, llm,
                                                 SoundDeviceTransport(params), TurnTimer()))
    else:
        transport = SoundDeviceTransport(params)
        pipeline = voice_agent.build(transport, make_stt(), llm, tts, args.vad_mode, system_prompt=SUPPORT_PROMPT,
                                     end_of_turn_silence_s=args.end_of_turn_silence)
        asyncio.run(voice_agent.run(pipeline, TurnTimer(), params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
