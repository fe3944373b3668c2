"""Text -> IPA through the eSpeak NG helper process (see `espeak_process`), one long-lived process per phonemizer."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import subprocess
import sys
import threading

from agent_tts.errors import AgentTTSError

logger = logging.getLogger(__name__)

# eSpeak marks words it reads in another language as "(fr)...(en)"; Piper voices were trained without them.
LANGUAGE_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")


class EspeakPhonemizer:
    """Phonemizes lists of clauses in an eSpeak NG process that is started on first use and restarted if it dies."""

    def __init__(self, voice: str = "en-us") -> None:
        self.voice = voice
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        if importlib.util.find_spec("espeakng_loader") is None:
            raise AgentTTSError("the default voice needs eSpeak NG data: pip install espeakng-loader")
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_tts.default_voice.espeak_process", self.voice],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            bufsize=1)
        greeting = process.stdout.readline()
        if json.loads(greeting or "null") != "ready":
            error = process.stderr.read().strip().splitlines()
            process.kill()
            raise AgentTTSError(f"the eSpeak NG process did not start: {error[-1] if error else 'no output'}")
        return process

    def phonemize(self, clauses: list[str]) -> list[str]:
        """IPA for each clause (empty string for a clause with nothing to say)."""
        if not clauses:
            return []
        with self._lock:
            for attempt in (1, 2):
                if self._process is None or self._process.poll() is not None:
                    self._process = self._start()
                try:
                    self._process.stdin.write(json.dumps(clauses) + "\n")
                    self._process.stdin.flush()
                    reply = json.loads(self._process.stdout.readline() or "null")
                except (BrokenPipeError, OSError, json.JSONDecodeError):
                    reply = None
                if isinstance(reply, list):
                    return [LANGUAGE_SWITCH.sub("", ipa) for ipa in reply]
                if isinstance(reply, dict):
                    raise AgentTTSError(f"eSpeak NG failed: {reply.get('error')}")
                logger.warning("the eSpeak NG process died (attempt %d); restarting it", attempt)
                self._close_process()
        raise AgentTTSError("the eSpeak NG process keeps dying")

    def _close_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                process.stdin.close()
                process.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
            finally:
                process.stdout.close()
                process.stderr.close()

    def close(self) -> None:
        with self._lock:
            self._close_process()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
