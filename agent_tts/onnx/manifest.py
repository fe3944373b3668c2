"""What an ONNX export was made from, and whether it still matches the voice's files.

`manifest.json` in an export folder records the export format, the voice's
model version (the SoVITS file's: v2, v2Pro or v2ProPlus), the model configs,
and for each source (the GPT file, the SoVITS file, the HuBERT and BERT
folders, and for v2Pro/v2ProPlus the speaker-verification model) every file's
size, mtime and sha256. Each graph carries the version and one digest of those hashes in
its ONNX metadata, checked against the manifest when it is opened.
Checking a voice against the manifest rehashes only the files whose size or
mtime changed: a fresh export is confirmed from file stats alone, a touched
but identical file still counts as fresh, and an edited file is caught (unless
an edit kept both its size and its mtime).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_tts.errors import AgentTTSError
from agent_tts.models.checkpoints import needs_speaker_verification

MANIFEST = "manifest.json"
EXPORT_FORMAT = 1
GRAPH_FILES = ("gpt_prefill.onnx", "gpt_step.onnx", "sovits_decoder.onnx", "prompt_codes.onnx",
               "speaker_encoder.onnx", "bert.onnx")
SV_GRAPH = "speaker_verification.onnx"
TOKENIZER_FOLDER = "bert_tokenizer"
VERSION_KEY = "agent_tts.voice_version"
SOURCES_KEY = "agent_tts.sources_sha256"


class StaleExportError(AgentTTSError):
    """An ONNX export is missing, incomplete, or was made from other files than the voice's."""


def graph_files(voice_version: str) -> tuple[str, ...]:
    """The graphs an export of a voice of this version holds (v2Pro/v2ProPlus add the speaker-verification model)."""
    return GRAPH_FILES + (SV_GRAPH,) if needs_speaker_verification(voice_version) else GRAPH_FILES


def sha256_of(path: Path, chunk_bytes: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def _files_of(source: Path) -> list[tuple[str, Path]]:
    """(name, path) of a file, or of every file in a folder, named relative to the folder."""
    if source.is_file():
        return [(source.name, source)]
    if source.is_dir():
        return sorted((str(p.relative_to(source)), p) for p in source.rglob("*")
                      if p.is_file() and not p.name.startswith("."))
    raise AgentTTSError(f"{source}: not found")


def fingerprint(source: Path, on_file: Callable[[Path], None] | None = None) -> list[dict[str, Any]]:
    """Size, mtime and sha256 of a file, or of every file in a folder (relative names)."""
    records = []
    for name, path in _files_of(source):
        if on_file is not None:
            on_file(path)
        stat = path.stat()
        records.append({"name": name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256_of(path)})
    return records


def _unchanged(source: Path, recorded: list[dict[str, Any]]) -> bool:
    try:
        files = _files_of(source)
    except AgentTTSError:
        return False
    if [name for name, _ in files] != [record["name"] for record in recorded]:
        return False
    for (_, path), record in zip(files, recorded):
        stat = path.stat()
        if stat.st_size != record["size"]:
            return False
        if stat.st_mtime_ns != record["mtime_ns"] and sha256_of(path) != record["sha256"]:
            return False
    return True


@dataclass(frozen=True)
class ExportManifest:
    """The parsed `manifest.json` of an export folder."""

    folder: Path
    record: dict[str, Any]

    @classmethod
    def read(cls, folder: str | Path) -> "ExportManifest":
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise StaleExportError(f"{folder}: no ONNX export here (no {MANIFEST}); "
                                   "make one with: agent-tts export-onnx VOICE")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StaleExportError(f"{path}: not valid JSON ({exc}); export again") from None
        if record.get("format") != EXPORT_FORMAT:
            raise StaleExportError(f"{folder}: export format {record.get('format')!r} is not this agent-tts's "
                                   f"({EXPORT_FORMAT}); export again with: agent-tts export-onnx VOICE")
        missing = [name for name in graph_files(record.get("voice_version", "")) if not (folder / name).is_file()]
        if missing:
            raise StaleExportError(f"{folder}: export incomplete (missing {', '.join(missing)}); export again")
        return cls(folder, record)

    @property
    def version(self) -> str:
        return self.record["voice_version"]

    def stale_sources(self, sources: dict[str, Path]) -> list[str]:
        """Names of the sources whose files differ from the ones exported."""
        recorded = self.record["sources"]
        return [name for name, path in sources.items()
                if name not in recorded or not _unchanged(Path(path), recorded[name]["files"])]

    def require_fresh(self, sources: dict[str, Path], voice_name: str) -> None:
        stale = self.stale_sources(sources)
        if stale:
            raise StaleExportError(f"{self.folder}: the ONNX export is stale ({', '.join(stale)} changed since it "
                                   f"was made); export again with: agent-tts export-onnx {voice_name}")


def sources_digest(sources: dict[str, dict[str, Any]]) -> str:
    """One sha256 over every source file's name and hash: the stamp each graph carries."""
    listing = sorted(f"{name}/{record['name']}:{record['sha256']}"
                     for name, source in sources.items() for record in source["files"])
    return hashlib.sha256("\n".join(listing).encode()).hexdigest()


def stamp_graph(path: Path, voice_version: str, digest: str) -> None:
    """Write the voice's version and the sources' digest into the ONNX file's metadata."""
    import onnx

    model = onnx.load(str(path))
    for key, value in ((VERSION_KEY, voice_version), (SOURCES_KEY, digest)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def check_stamp(stamp: dict[str, str], path: Path, manifest: "ExportManifest") -> None:
    """Refuse a graph whose stamp (its metadata) is not its manifest's (a file copied in from another export)."""
    if stamp.get(SOURCES_KEY) != manifest.record["sources_sha256"] or stamp.get(VERSION_KEY) != manifest.version:
        raise StaleExportError(f"{path}: this graph was not exported with the rest of {manifest.folder} "
                               "(its source stamp differs); export again with: agent-tts export-onnx VOICE")


def write_manifest(folder: Path, record: dict[str, Any]) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
