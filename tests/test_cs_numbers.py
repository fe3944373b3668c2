"""Numbers as a customer-service agent says them: the hand-written readings in tests/data/cs_numbers.tsv.

Each raw sentence is read as a user would run it (`auto`), each expected
reading with its language fixed, and the two phone sequences are compared
with punctuation left out. The test prints every failure and the pass rate
of each category, and needs 98% overall.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_tts.text.frontend import TextFrontend
from agent_tts.text.symbols import PUNCTUATION

DATA = Path(__file__).parent / "data" / "cs_numbers.tsv"
REQUIRED_PASS_RATE = 0.98
MIN_SENTENCES = 200
# The language an expected reading is read in: it is Han (zh, with the English words of mixed rows) or words (en).
EXPECTED_MODE = {"zh": "zh", "mixed": "zh", "en": "en"}


@dataclass(frozen=True)
class Case:
    """One sentence and the readings people give it."""

    category: str
    language: str
    raw: str
    expected: tuple[str, ...]


def load_cases(path: Path = DATA) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        category, language, raw, expected = line.split("\t")
        cases.append(Case(category, language, raw, tuple(expected.split("|"))))
    return cases


def spoken_phones(frontend: TextFrontend, text: str, language: str) -> list[str]:
    return [phone for phone in frontend(text, language).phones if phone not in PUNCTUATION]


@pytest.fixture(scope="module")
def frontend() -> TextFrontend:
    return TextFrontend()


def test_the_set_is_large_and_covers_every_kind():
    cases = load_cases()
    assert len(cases) >= MIN_SENTENCES
    assert {case.language for case in cases} == set(EXPECTED_MODE)
    assert all(case.expected and all(reading.strip() for reading in case.expected) for case in cases)


def test_customer_service_numbers_are_read_right(frontend, capsys):
    cases = load_cases()
    passed: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    failures = []
    for case in cases:
        ours = spoken_phones(frontend, case.raw, "auto")
        mode = EXPECTED_MODE[case.language]
        right = any(ours == spoken_phones(frontend, reading, mode) for reading in case.expected)
        total[case.category] += 1
        passed[case.category] += right
        if not right:
            failures.append(f"  [{case.category}] {case.raw!r} -> {frontend(case.raw, 'auto').norm_text!r}; "
                            f"expected {' | '.join(case.expected)}")
    rate = sum(passed.values()) / len(cases)
    with capsys.disabled():
        print(f"\ncustomer-service numbers: {sum(passed.values())}/{len(cases)} read right ({rate:.1%})")
        for category in sorted(total):
            print(f"  {category:<11} {passed[category]:>3}/{total[category]:<3}")
        if failures:
            print("failures:\n" + "\n".join(failures))
    assert rate >= REQUIRED_PASS_RATE, f"{len(failures)} sentences read wrong:\n" + "\n".join(failures)
