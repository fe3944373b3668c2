"""Where each word begins in the default voice's phoneme string, so Piper's phoneme durations time the words.

eSpeak NG phonemizes a clause as a whole and joins some words in its output
("in the" -> "ɪnðə", "of the" -> "ʌvðə"), so its words are not always the
text's. `word_starts` aligns the clause's IPA words with the text's words,
each phonemized on its own, by a minimum-cost grouping: one IPA word for one
to three text words (a join), two or three IPA words for one text word (a
split), or a word left over on either side; the cost of a pair is the edit
distance of the two IPA strings without stress and length marks. A text word
inside a joined IPA word begins where its share of the IPA letters begins
(shares in proportion to each word's own IPA); a text word with no IPA of
its own begins where the next IPA word does.
"""

from __future__ import annotations

from collections.abc import Sequence

MARKS = frozenset("ˈˌːˑ,.!?;:")
MAX_GROUP = 3
BAND = 8  # the alignment keeps within this many words of the diagonal


def _plain(ipa: str) -> str:
    return "".join(char for char in ipa if char not in MARKS)


def _distance(a: str, b: str) -> float:
    """Edit distance of two IPA strings, over the longer length (0 same, 1 nothing in common)."""
    if not a or not b:
        return 0.0 if a == b else 1.0
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1] / max(len(a), len(b))


def ipa_words(phonemes: str) -> list[tuple[int, str]]:
    """(offset, word) of each space-separated IPA word of a phoneme string."""
    words, offset = [], 0
    for word in phonemes.split(" "):
        if word:
            words.append((offset, word))
        offset += len(word) + 1
    return words


def word_starts(phonemes: str, word_ipa: Sequence[str]) -> list[int]:
    """For each text word (given as its own IPA), the offset in `phonemes` where its sounds begin."""
    clause = ipa_words(phonemes)
    m, n = len(clause), len(word_ipa)
    if not n:
        return []
    if not m:
        return [0] * n
    plain_clause = [_plain(word) for _, word in clause]
    plain_words = [_plain(word) for word in word_ipa]
    infinity = float("inf")
    cost = [[infinity] * (n + 1) for _ in range(m + 1)]
    move: list[list[tuple[int, int] | None]] = [[None] * (n + 1) for _ in range(m + 1)]
    cost[0][0] = 0.0
    band = BAND + abs(m - n)
    for i in range(m + 1):
        for j in range(max(0, i - band), min(n, i + band) + 1):
            here = cost[i][j]
            if here == infinity:
                continue
            skip_word = 0.3 if j < n and not plain_words[j] else 1.0  # a word eSpeak gives no sounds costs less
            steps: list[tuple[int, int, float]] = [(1, 0, 1.0), (0, 1, skip_word)]
            steps += [(1, k, -1.0) for k in range(1, MAX_GROUP + 1)] + [(k, 1, -1.0) for k in range(2, MAX_GROUP + 1)]
            for di, dj, fixed in steps:
                ti, tj = i + di, j + dj
                if ti > m or tj > n:
                    continue
                if fixed >= 0:
                    step = fixed
                else:
                    step = _distance("".join(plain_clause[i:ti]), "".join(plain_words[j:tj])) * max(di, dj)
                if here + step < cost[ti][tj]:
                    cost[ti][tj] = here + step
                    move[ti][tj] = (di, dj)
    starts: list[int | None] = [None] * n
    i, j = m, n
    while i or j:
        di, dj = move[i][j]
        i, j = i - di, j - dj
        if di == 0:
            continue  # a text word with no IPA of its own: placed below
        offset, word = clause[i]
        if dj == 1:
            starts[j] = offset
        elif dj > 1:
            shares = [max(1, len(plain_words[j + k])) for k in range(dj)]
            letters = [index for index, char in enumerate(word) if char not in MARKS] or [0]
            before = 0
            for k in range(dj):
                starts[j + k] = offset + letters[min(len(letters) - 1, before * len(letters) // sum(shares))]
                before += shares[k]
    following = len(phonemes)
    for index in range(n - 1, -1, -1):
        if starts[index] is None:
            starts[index] = following
        following = starts[index]
    for index in range(1, n):  # never before the word ahead of it
        starts[index] = max(starts[index], starts[index - 1])
    return starts
