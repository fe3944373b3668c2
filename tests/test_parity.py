"""`agent-tts parity` reproduces the reference fixture, and reports a wrong golden as failed."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from agent_tts.parity import run_parity
from child_process import run_child

EXPECTED_ITEMS = {
    "frontend_rows", *(f"frontend_row_{row}" for row in (11, 17, 18, 23, 24, 27)), "ref_phone_ids",
    "ar0_all_phone_ids", "ar1_all_phone_ids",
    "ref_wav16k_padded", "hubert_last_hidden", "prompt_semantic", "refer_spec", "ge",
    "bert_0", "bert_1", "bert_2",
    "ar0_all_bert", "ar0_greedy_logits", "ar0_greedy_tokens", "ar0_greedy_noeos_logits", "ar0_greedy_noeos_tokens",
    "decode0_speed1p0", "decode0_speed1p25",
    "ar1_all_bert", "ar1_greedy_logits", "ar1_greedy_tokens", "ar1_greedy_noeos_logits", "ar1_greedy_noeos_tokens",
    "decode1_speed1p0", "decode1_speed1p25",
}


def test_parity_command_passes_on_reference_fixture(gsv_v2_fixture: Path) -> None:
    completed = run_child([sys.executable, "-m", "agent_tts.cli.main", "parity", str(gsv_v2_fixture)], timeout=600)
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert lines[-1] == f"{len(EXPECTED_ITEMS)} passed, 0 failed"
    reported = {line.split()[1] for line in lines[:-1]}
    assert reported == EXPECTED_ITEMS
    greedy = next(line for line in lines if line.split()[1] == "ar0_greedy_tokens")
    assert "first 1500/1500 identical" in greedy
    rows = next(line for line in lines if line.split()[1] == "frontend_rows")
    assert "22/28 identical" in rows and "6 documented" in rows


def _fixture_copy(source: Path, target: Path) -> Path:
    """A copy whose large read-only folders are symlinked, with golden/ copied for editing."""
    target.mkdir()
    for name in ("models", "pretrained", "ref", "manifest.json"):
        (target / name).symlink_to(source / name)
    shutil.copytree(source / "golden", target / "golden")
    return target


def test_parity_reports_a_perturbed_golden_as_failed(gsv_v2_fixture: Path, tmp_path: Path) -> None:
    fixture = _fixture_copy(gsv_v2_fixture, tmp_path / "fixture")
    ge = np.load(fixture / "golden" / "ge.npy")
    np.save(fixture / "golden" / "ge.npy", ge * 1.001)
    tokens = np.load(fixture / "golden" / "ar1_greedy_noeos_tokens.npy")
    tokens[30] = (tokens[30] + 1) % 1024
    np.save(fixture / "golden" / "ar1_greedy_noeos_tokens.npy", tokens)

    results = {r.name: r for r in run_parity(fixture)}

    assert not results["ge"].passed
    assert not results["ar1_greedy_noeos_tokens"].passed
    assert results["ar1_greedy_noeos_tokens"].error == f"{len(tokens) - 1}/{len(tokens)} equal"
    assert results["refer_spec"].passed and results["decode0_speed1p0"].passed


def test_parity_fails_on_an_undocumented_frontend_row(gsv_v2_fixture: Path, tmp_path: Path) -> None:
    fixture = _fixture_copy(gsv_v2_fixture, tmp_path / "fixture")
    rows = (fixture / "golden" / "frontend.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(rows[0])
    row["phone_ids"][3] += 1
    rows[0] = json.dumps(row, ensure_ascii=False)
    (fixture / "golden" / "frontend.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")

    from agent_tts.parity import Fixture, check_frontend_rows
    from agent_tts.text.frontend import TextFrontend

    results = {r.name: r for r in check_frontend_rows(Fixture(fixture), TextFrontend())}
    assert not results["frontend_row_0"].passed and not results["frontend_rows"].passed
    assert results["frontend_row_11"].passed  # documented

