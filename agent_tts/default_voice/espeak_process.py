"""A separate process that turns text into IPA with eSpeak NG (GPL), so no GPL code is loaded into agent-tts.

Run as `python -m agent_tts.default_voice.espeak_process VOICE`. It reads one
JSON list of clauses per line on stdin and writes one JSON list per line on
stdout: each clause's IPA phonemes, words separated by spaces. The library
and its data come from the `espeakng-loader` wheel; nothing is downloaded.
"""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
PHONEMES_IPA = 0x02


def open_espeak(voice: str) -> ctypes.CDLL:
    import espeakng_loader

    library = ctypes.CDLL(espeakng_loader.get_library_path())
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_TextToPhonemes.restype = ctypes.c_char_p
    library.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
    if library.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, INITIALIZE_DONT_EXIT) <= 0:
        raise RuntimeError("eSpeak NG failed to initialise")
    if library.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
    return library


def text_to_ipa(library: ctypes.CDLL, text: str) -> str:
    """IPA for `text`; eSpeak consumes the text clause by clause, each call returning one clause."""
    encoded = ctypes.create_string_buffer(text.encode())
    pointer = ctypes.c_void_p(ctypes.addressof(encoded))
    pieces = []
    while pointer.value:
        phonemes = library.espeak_TextToPhonemes(ctypes.byref(pointer), CHARS_UTF8, PHONEMES_IPA)
        if phonemes:
            pieces.append(phonemes.decode("utf-8", errors="replace").strip())
    return " ".join(piece for piece in pieces if piece)


def main() -> int:
    library = open_espeak(sys.argv[1] if len(sys.argv) > 1 else "en-us")
    sys.stdout.write(json.dumps("ready") + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            reply = [text_to_ipa(library, clause) for clause in json.loads(line)]
        except Exception as exc:  # noqa: BLE001 - the client gets the error instead of a dead pipe
            reply = {"error": str(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
