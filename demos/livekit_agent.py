"""A LiveKit Agents voice agent that speaks with agent-tts, its transcript aligned to the words it plays.

    pip install "agent-tts[livekit]"
    python demos/livekit_agent.py console                  # in the terminal, no LiveKit server (text or voice)
    python demos/livekit_agent.py dev                      # join rooms of LIVEKIT_URL (LIVEKIT_API_KEY/SECRET)
    AGENT_TTS_VOICE=alice python demos/livekit_agent.py console

The voice is `AGENT_TTS_VOICE` (a registered name or a voice TOML), else
your default voice, else the bundled one. Offline it answers from the
customer-service FAQ (agent_tts/pipecat/responders.py) through a small
scripted LLM; with `AGENT_TTS_LLM_URL` and `AGENT_TTS_LLM_MODEL` (and the
`livekit-plugins-openai` package) it uses that OpenAI-compatible endpoint.
Speech input needs an STT and a VAD plugin of your choice (for instance
`livekit-plugins-silero` and `livekit-plugins-openai`); without them, type
in console mode. The session uses `use_tts_aligned_transcript=True`: when you
interrupt, the chat history keeps the words that were played (docs/livekit.md).
"""

from __future__ import annotations

import os
from typing import Any

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, cli, llm, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from agent_tts.livekit import TTS
from agent_tts.pipecat.responders import FAQResponder

INSTRUCTIONS = "You are the voice of a friendly online shop's support. Answer in one or two short spoken sentences."


class FAQLLM(llm.LLM):
    """An offline LLM for the demo: answers the user's last message from the support FAQ, a few words at a time."""

    def __init__(self) -> None:
        super().__init__()
        self._respond = FAQResponder()

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS, **kwargs: Any) -> llm.LLMStream:
        return _FAQStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _FAQStream(llm.LLMStream):
    async def _run(self) -> None:
        question = next((item.text_content for item in reversed(self._chat_ctx.items)
                         if item.type == "message" and item.role == "user"), "") or ""
        request_id = utils.shortuuid()
        for word in self._llm._respond(question).split(" "):
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id,
                                                     delta=llm.ChoiceDelta(role="assistant", content=word + " ")))


def make_llm() -> llm.LLM:
    url, model = os.environ.get("AGENT_TTS_LLM_URL"), os.environ.get("AGENT_TTS_LLM_MODEL")
    if url and model:
        from livekit.plugins import openai

        return openai.LLM(base_url=url, model=model, api_key=os.environ.get("OPENAI_API_KEY", "none"))
    return FAQLLM()


def make_session() -> AgentSession:
    """The session: agent-tts as the TTS (aligned transcripts on), the LLM above, no STT/VAD unless plugged in."""
    return AgentSession(tts=TTS(voice=os.environ.get("AGENT_TTS_VOICE") or None), llm=make_llm(),
                        use_tts_aligned_transcript=True)


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = make_session()
    await session.start(agent=Agent(instructions=INSTRUCTIONS), room=ctx.room)
    session.say("Hello, this is the support line. How can I help you today?")


if __name__ == "__main__":
    cli.run_app(server)
