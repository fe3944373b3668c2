"""``agent-tts download``: fetch the official pretrained folders (HuBERT, RoBERTa, the v2Pro speaker-verification
model, v2 base models)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent_tts.download import HUB, download_pretrained
from agent_tts.voices import default_pretrained_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download", help="fetch the official GPT-SoVITS pretrained folders from the model hub",
        description=f"Download chinese-hubert-base/, chinese-roberta-wwm-ext-large/, the speaker-verification model "
        f"v2Pro and v2ProPlus voices need (sv/) and the v2 base models from {HUB} into DIR (default "
        f"{default_pretrained_dir()}). Files already there are skipped.")
    parser.add_argument("--dir", type=Path, default=None, metavar="DIR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder = args.dir or default_pretrained_dir()
    fetched = download_pretrained(folder)
    print(f"{len(fetched)} file(s) downloaded; the pretrained folders are in {folder}")
    return 0
