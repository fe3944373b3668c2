"""Helpers shared by the engine tests: the fixture voice as a TOML file."""

from __future__ import annotations

from pathlib import Path

REFERENCE_TEXT = "Hello, this is a fully offline test of the bundled Piper voice."


def write_fixture_voice(fixture_root: Path, folder: Path, name: str = "fixture") -> Path:
    """A voice TOML over the gsv-v2 fixture's tiny models, clip and pretrained folders."""
    path = folder / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\n'
        f'gpt = "{fixture_root / "models" / "s1.ckpt"}"\n'
        f'sovits = "{fixture_root / "models" / "s2.pth"}"\n'
        f'ref_audio = "{fixture_root / "ref" / "ref.wav"}"\n'
        f'ref_text = "{REFERENCE_TEXT}"\n'
        'ref_language = "en"\n'
        f'pretrained = "{fixture_root / "pretrained"}"\n',
        encoding="utf-8",
    )
    return path
