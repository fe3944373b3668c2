"""Helpers shared by the engine tests: the fixture voice as a TOML file, and a check of a stream's word times."""

from __future__ import annotations

from pathlib import Path

import torch

from agent_tts.models.checkpoints import load_gpt
from agent_tts.models.synthetic import TINY_GPT_MODEL, write_gpt_checkpoint

REFERENCE_TEXT = "Hello, this is a fully offline test of the bundled Piper voice."


def tiny_gpt(folder: Path, seed: int = 11):
    """A tiny random-weight GPT with weights larger than the writer's, so its logits vary enough to make decoding
    non-trivial."""
    gpt = load_gpt(write_gpt_checkpoint(folder / "tiny.ckpt", TINY_GPT_MODEL, seed=1))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in gpt.parameters():
            if param.dim() > 1:
                param.normal_(0, 0.3, generator=generator)
    return gpt


def write_fixture_voice(fixture_root: Path, folder: Path, name: str = "fixture", gpt: Path | None = None) -> Path:
    """A voice TOML over the gsv-v2 fixture's tiny models (or another GPT file), clip and pretrained folders."""
    path = folder / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\n'
        f'gpt = "{gpt or fixture_root / "models" / "s1.ckpt"}"\n'
        f'sovits = "{fixture_root / "models" / "s2.pth"}"\n'
        f'ref_audio = "{fixture_root / "ref" / "ref.wav"}"\n'
        f'ref_text = "{REFERENCE_TEXT}"\n'
        'ref_language = "en"\n'
        f'pretrained = "{fixture_root / "pretrained"}"\n',
        encoding="utf-8",
    )
    return path


# Two English units and a Chinese one: word timing across units and scripts.
WORD_TEXT = "Your order shipped on Monday, and it arrives on Friday. 你好，欢迎来到我们的客服中心。"


def check_word_times(chunks, text: str) -> list:
    """Assert that the chunks' words cover `text` once, in order, each inside its chunk; the words."""
    timed = [word for chunk in chunks for word in chunk.words]
    for chunk in chunks:
        assert all(chunk.start_s <= word.start_s < chunk.end_s for word in chunk.words)
    starts = [word.start_s for word in timed]
    assert starts == sorted(starts)
    assert all(chunk.start_s == previous.end_s for previous, chunk in zip(chunks, chunks[1:]))
    by_unit: dict[int, list] = {}
    for chunk in chunks:
        by_unit.setdefault(chunk.unit_index, []).append(chunk)
    spoken = "".join(unit[0].unit_text[w.span[0]:w.span[1]] for unit in by_unit.values()
                     for w in (w for c in unit for w in c.words))
    assert spoken.replace(" ", "") == "".join(text.split())  # every word of the text, once, in order
    return timed
