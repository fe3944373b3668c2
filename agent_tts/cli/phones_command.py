"""``agent-tts phones``: show the phones the frontend makes of a text."""

from __future__ import annotations

import argparse
import json
import sys

from agent_tts.text.language_split import LANGUAGES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "phones",
        help="print the phones of a text",
        description="Normalise TEXT and turn it into GPT-SoVITS phone symbols (space-separated). "
        "With TEXT '-' the text is read from standard input.",
    )
    parser.add_argument("text", metavar="TEXT", help="the text, or - for standard input")
    parser.add_argument("--language", choices=LANGUAGES, default="auto", help="language of the text (default auto)")
    parser.add_argument("--version", choices=("v1", "v2"), default="v2", help="symbol table for the ids (default v2)")
    parser.add_argument("--g2pw", metavar="DIR", help="g2pW model folder (G2PWModel) for Chinese polyphones; "
                        "without it pypinyin's readings are used")
    parser.add_argument("--bert", metavar="DIR", help="chinese-roberta-wwm-ext-large folder (g2pW's tokenizer)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: phones, phone_ids, word2ph (Chinese only), norm_text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from agent_tts.errors import AgentTTSError
    from agent_tts.text.chinese.g2pw import G2PWReader
    from agent_tts.text.frontend import TextFrontend

    if args.g2pw and not args.bert:
        raise AgentTTSError("--g2pw needs --bert (the chinese-roberta-wwm-ext-large folder with the tokenizer)")
    text = sys.stdin.read() if args.text == "-" else args.text
    reader = G2PWReader.from_folder(args.g2pw, args.bert) if args.g2pw else None
    result = TextFrontend(version=args.version, pinyin_reader=reader)(text, args.language)
    if args.json:
        record = {"phones": result.phones, "phone_ids": result.phone_ids, "norm_text": result.norm_text}
        if result.word2ph is not None:
            record["word2ph"] = result.word2ph
        print(json.dumps(record, ensure_ascii=False))
    else:
        print(" ".join(result.phones))
    return 0
