"""Pronunciations for words no dictionary has: the GRU encoder-decoder that g2p_en ships.

Only the package's weight file (`checkpoint20.npz`) is read, found without
importing g2p_en: its import fetches NLTK data from the internet.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from agent_tts.errors import AgentTTSError

GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
PHONEMES = (
    "<pad>", "<unk>", "<s>", "</s>",
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2", "AW0", "AW1", "AW2",
    "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2", "ER0", "ER1", "ER2", "EY0", "EY1", "EY2",
    "F", "G", "HH", "IH0", "IH1", "IH2", "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1",
    "OW2", "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2",
    "V", "W", "Y", "Z", "ZH",
)
_START, _END, _UNKNOWN_GRAPHEME = 2, 3, 1
MAX_PHONES = 20


def _weights_path() -> Path:
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or spec.origin is None:
        raise AgentTTSError("the g2p_en package is not installed; it provides the English out-of-vocabulary model")
    return Path(spec.origin).parent / "checkpoint20.npz"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class GRUCell:
    """One PyTorch-layout GRU cell (gates r, z, n stacked in the weight rows)."""

    def __init__(self, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> None:
        self.w_ih_t, self.w_hh_t, self.b_ih, self.b_hh = w_ih.T.copy(), w_hh.T.copy(), b_ih, b_hh
        self.hidden = w_hh.shape[1]

    def __call__(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        gates_x = x @ self.w_ih_t + self.b_ih
        gates_h = h @ self.w_hh_t + self.b_hh
        split = 2 * self.hidden
        reset, update = np.split(_sigmoid(gates_x[:split] + gates_h[:split]), 2)
        candidate = np.tanh(gates_x[split:] + reset * gates_h[split:])
        return (1.0 - update) * candidate + update * h


class OOVPronouncer:
    """Greedy seq2seq letters -> ARPAbet for out-of-vocabulary words."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.encoder_embedding = weights["enc_emb"]
        self.decoder_embedding = weights["dec_emb"]
        self.encoder = GRUCell(weights["enc_w_ih"], weights["enc_w_hh"], weights["enc_b_ih"], weights["enc_b_hh"])
        self.decoder = GRUCell(weights["dec_w_ih"], weights["dec_w_hh"], weights["dec_b_ih"], weights["dec_b_hh"])
        self.output_t = weights["fc_w"].T.copy()
        self.output_bias = weights["fc_b"]
        self._index = {grapheme: index for index, grapheme in enumerate(GRAPHEMES)}

    @classmethod
    @lru_cache(maxsize=1)
    def load(cls) -> "OOVPronouncer":
        with np.load(_weights_path()) as archive:
            return cls({name: archive[name].astype(np.float32) for name in archive.files})

    def __call__(self, word: str) -> list[str]:
        ids = [self._index.get(char, _UNKNOWN_GRAPHEME) for char in word.lower()] + [GRAPHEMES.index("</s>")]
        h = np.zeros(self.encoder.hidden, np.float32)
        for index in ids:
            h = self.encoder(self.encoder_embedding[index], h)
        phones: list[str] = []
        previous = _START
        for _ in range(MAX_PHONES):
            h = self.decoder(self.decoder_embedding[previous], h)
            previous = int(np.argmax(h @ self.output_t + self.output_bias))
            if previous == _END:
                break
            phones.append(PHONEMES[previous])
        return phones
