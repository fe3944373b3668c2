"""``agent-tts voices add|list|remove|default``: the user's GPT-SoVITS voices."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent_tts.text.language_split import LANGUAGES
from agent_tts.voice import VoiceSpec
from agent_tts.voices import VoiceRegistry, default_pretrained_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("voices", help="add, list or remove GPT-SoVITS voices",
                                   description="Manage the voices in the user's registry "
                                   "($AGENT_TTS_HOME/voices or ~/.config/agent-tts/voices).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register a voice (it is loaded once to check it)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--gpt", required=True, type=Path, metavar="FILE", help="the GPT weights (*.ckpt)")
    add.add_argument("--sovits", required=True, type=Path, metavar="FILE", help="the SoVITS weights (*.pth)")
    add.add_argument("--ref", required=True, type=Path, metavar="WAV", help="a 3-10 s reference clip")
    add.add_argument("--aux-ref", action="append", default=[], type=Path, metavar="WAV",
                     help="another clip of the same speaker, averaged into the speaker vector (repeatable)")
    add.add_argument("--ref-text", required=True, metavar="TEXT", help="what the reference clip says")
    add.add_argument("--ref-language", required=True, choices=LANGUAGES, metavar="LANG",
                     help=f"the clip's language ({', '.join(LANGUAGES)})")
    add.add_argument("--pretrained", type=Path, metavar="DIR",
                     help=f"folder with chinese-hubert-base/, chinese-roberta-wwm-ext-large/ and, for v2Pro and "
                     f"v2ProPlus voices, sv/ (default: {default_pretrained_dir()}, where 'agent-tts download' puts "
                     "them)")
    add.add_argument("--default", action="store_true", help="make it the default voice")
    add.add_argument("--replace", action="store_true", help="replace a voice of the same name")
    add.set_defaults(handler=run_add)
    listing = actions.add_parser("list", help="list the registered voices")
    listing.set_defaults(handler=run_list)
    remove = actions.add_parser("remove", help="unregister a voice (its files stay)")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=run_remove)
    default = actions.add_parser("default", help="make a voice the default")
    default.add_argument("name", metavar="NAME")
    default.set_defaults(handler=run_default)


def run_add(args: argparse.Namespace) -> int:
    registry = VoiceRegistry()
    print(f"loading {args.name} to check it ...", flush=True)
    spec = VoiceSpec.with_pretrained(args.name, args.gpt, args.sovits, args.ref, args.ref_text, args.ref_language,
                                     args.pretrained or default_pretrained_dir(), tuple(args.aux_ref))
    path = registry.add(spec, make_default=args.default, replace=args.replace)
    print(f"added voice {args.name!r} ({path})" + (" as the default" if registry.default_name() == args.name else ""))
    return 0


def run_list(args: argparse.Namespace) -> int:
    registry = VoiceRegistry()
    names = registry.names()
    if not names:
        print(f"no voices in {registry.folder}; agent-tts speaks with the bundled default voice.\n"
              "Add one with: agent-tts voices add NAME --gpt FILE --sovits FILE --ref WAV --ref-text TEXT "
              "--ref-language LANG")
        return 0
    default = registry.default_name()
    for name in names:
        spec = registry.spec(name)
        print(f"{'*' if name == default else ' '} {name}  ({spec.ref_language}; {spec.gpt.name}, {spec.sovits.name})")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    VoiceRegistry().remove(args.name)
    print(f"removed voice {args.name!r}")
    return 0


def run_default(args: argparse.Namespace) -> int:
    VoiceRegistry().set_default(args.name)
    print(f"{args.name!r} is now the default voice")
    return 0
