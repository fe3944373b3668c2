"""`TextAttentionProbe`: the weights it leaves are each row's softmax over its own text span, averaged over layers
and heads, whichever window it is given; rows prefilled together get the weights of their own last query."""
from __future__ import annotations

import math

import numpy as np
import torch

from agent_tts.engine.ar_batch import ARRequest, BatchDecoder, DecodeOptions
from agent_tts.engine.sampling import SamplingOptions
from agent_tts.models.checkpoints import load_gpt
from agent_tts.models.synthetic import TINY_GPT_MODEL, write_gpt_checkpoint
from agent_tts.models.t2s import TextAttentionProbe


class RecordingProbe(TextAttentionProbe):
    """The probe, also keeping what each layer passed it, for the reference computation."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.passed: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def record(self, layer: int, queries: torch.Tensor, keys: torch.Tensor, key_slots: torch.Tensor) -> None:
        self.passed.append((queries.clone(), keys.clone(), key_slots.clone()))
        super().record(layer, queries, keys, key_slots)


def reference_weights(passed, spans: list[tuple[int, int]], key_count: int) -> torch.Tensor:
    """Layer by layer, row by row, head by head: softmax of the last query's scores over the span's keys."""
    weights = torch.zeros(len(spans), key_count)
    for queries, keys, _ in passed:
        for row, (start, end) in enumerate(spans):
            if start == end:
                continue
            for head in range(queries.shape[1]):
                scores = keys[row, head, start:end] @ queries[row, head, -1] / math.sqrt(queries.shape[-1])
                weights[row, start:end] += torch.softmax(scores, dim=0) / (len(passed) * queries.shape[1])
    return weights


def test_the_probe_gives_each_rows_softmax_over_its_own_text(tmp_path):
    gpt = load_gpt(write_gpt_checkpoint(tmp_path / "s1.ckpt", dict(TINY_GPT_MODEL, n_layer=3, head=4), seed=1)).eval()
    layers = tuple(range(gpt.config.num_layers))
    generator = torch.Generator().manual_seed(3)
    rows, length = 3, 20
    cache = gpt.new_cache(32, rows)
    with torch.inference_mode():
        for row in range(rows):  # a filled cache: random keys and values in every row
            cache.k[:, row].normal_(generator=generator)
            cache.v[:, row].normal_(generator=generator)
            cache.lengths[row] = length
        spans = [(2, 9), (0, 0), (5, 14)]  # the middle row asks for no text
        tokens = torch.tensor([[4], [7], [1]])
        positions = torch.tensor([3, 5, 8])
        slots = torch.full((rows,), length)

        results = {}
        for window in (None, (2, 14)):
            probe = RecordingProbe(torch.tensor([s for s, _ in spans]), torch.tensor([e for _, e in spans]), layers,
                                   window)
            logits = gpt.step(tokens, positions, slots, cache.view(rows, length + 1), probe=probe)
            results[window] = (probe, logits)
        plain_logits = gpt.step(tokens, positions, slots, cache.view(rows, length + 1))

    for window, (probe, logits) in results.items():
        assert len(probe.passed) == gpt.config.num_layers
        assert probe.weights.shape == (rows, length + 1)
        expected = reference_weights(probe.passed, spans, length + 1)
        assert torch.allclose(probe.weights, expected, atol=1e-6), window
        torch.testing.assert_close(logits, plain_logits, rtol=0, atol=0)  # the probe only watches
    assert torch.allclose(results[None][0].weights.sum(dim=1), torch.tensor([1.0, 0.0, 1.0]), atol=1e-6)
    assert not torch.equal(results[None][0].weights[0], results[None][0].weights[2])


def test_rows_prefilled_together_get_the_attention_of_their_own_last_query(tmp_path):
    gpt = load_gpt(write_gpt_checkpoint(tmp_path / "s1.ckpt", dict(TINY_GPT_MODEL, n_layer=3, head=4), seed=1)).eval()
    generator = torch.Generator().manual_seed(5)

    def request(phones: int, prompt: int, span: tuple[int, int]) -> ARRequest:
        return ARRequest(torch.randint(0, gpt.config.phoneme_vocab_size, (phones,), generator=generator),
                         torch.randn(1024, phones, generator=generator),
                         torch.randint(0, 1024, (prompt,), generator=generator),
                         DecodeOptions(SamplingOptions(top_k=1), max_tokens=5, suppress_eos=True),
                         align_text=span)

    requests = [request(14, 6, (4, 14)), request(6, 9, (2, 6)), request(10, 3, (0, 10))]  # lengths 20, 15, 13
    alone = [BatchDecoder(gpt).add(one) for one in requests]
    together = BatchDecoder(gpt).add_many(requests)
    for solo, row in zip(alone, together):
        assert solo.tokens == row.tokens
        np.testing.assert_allclose(row.attention[0], solo.attention[0], atol=1e-6)
        assert abs(row.attention[0].sum() - 1.0) < 1e-5
