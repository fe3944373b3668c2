"""Fetch the official GPT-SoVITS pretrained folders from the Hugging Face hub, on the user's machine.

HuBERT and RoBERTa (every voice), the speaker-verification model (v2Pro and
v2ProPlus voices: ``sv/``, where upstream's ``pretrained_models`` keeps it) and
the v2 base models.

Only `agent-tts download` calls this; nothing else in agent-tts touches the network.
Files are written to `NAME.part` and renamed when complete, so an interrupted
download never leaves a truncated model behind, and files already present are skipped.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from agent_tts.errors import AgentTTSError
from agent_tts.pretrained_layout import SV_CHECKPOINT

HUB = "https://huggingface.co/lj1995/GPT-SoVITS/resolve/main"
PRETRAINED_FILES = (
    "chinese-hubert-base/config.json",
    "chinese-hubert-base/preprocessor_config.json",
    "chinese-hubert-base/pytorch_model.bin",
    "chinese-roberta-wwm-ext-large/config.json",
    "chinese-roberta-wwm-ext-large/tokenizer.json",
    "chinese-roberta-wwm-ext-large/pytorch_model.bin",
    str(SV_CHECKPOINT),
    "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt",
    "gsv-v2final-pretrained/s2G2333k.pth",
)
CONNECT_TIMEOUT_S = 10


class _ProgressBar:
    """One line on stderr, redrawn as a file arrives."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        self.shown = True
        name = self.name
        rate = done / max(1e-6, time.perf_counter() - self.started) / 1e6
        if total:
            filled = int(30 * done / total)
            sys.stderr.write(f"\r  {name} [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{done / 1e6:.1f}/{total / 1e6:.1f} MB {rate:.1f} MB/s")
        else:
            sys.stderr.write(f"\r  {name} {done / 1e6:.1f} MB {rate:.1f} MB/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def fetch(url: str, target: Path, progress: Callable[[int, int], None]) -> None:
    partial = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S) as response, open(partial, "wb") as handle:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while block := response.read(1 << 20):
            handle.write(block)
            done += len(block)
            progress(done, total)
    partial.replace(target)


def download_pretrained(folder: Path, hub: str = HUB, files: tuple[str, ...] = PRETRAINED_FILES) -> list[Path]:
    """Download what is missing under `folder`; a clear error at once when the hub cannot be reached."""
    fetched = []
    for relative in files:
        target = folder / relative
        if target.is_file():
            continue
        progress = _ProgressBar(relative)
        try:
            fetch(f"{hub}/{relative}", target, progress)
        except urllib.error.HTTPError as exc:
            raise AgentTTSError(f"{hub}/{relative}: the hub answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AgentTTSError(
                f"cannot download {relative} from {hub} ({reason}). This machine seems to be offline: run "
                f"'agent-tts download' where the internet is reachable, or copy the folders "
                f"chinese-hubert-base/, chinese-roberta-wwm-ext-large/ and sv/ into {folder}") from None
        finally:
            progress.close()
        fetched.append(target)
    return fetched
