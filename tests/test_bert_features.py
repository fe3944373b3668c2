"""BERT is loaded cut to the layers GPT-SoVITS reads: the same features as upstream's ``hidden_states[-3]``."""

import pytest
import torch
from transformers import BertForMaskedLM

from agent_tts.errors import CheckpointError
from agent_tts.models.pretrained import UNUSED_TOP_BERT_LAYERS, BertFeatureExtractor
from agent_tts.models.synthetic_voice import write_bert_folder

SIZES = {"hidden_size": 64, "num_hidden_layers": 5, "num_attention_heads": 4, "intermediate_size": 128}


def test_the_cut_encoder_gives_upstreams_third_to_last_hidden_state(tmp_path):
    folder = write_bert_folder(tmp_path / "bert", SIZES, seed=3)
    extractor = BertFeatureExtractor.from_folder(folder)
    full = BertForMaskedLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()

    assert len(extractor.model.encoder.layer) == SIZES["num_hidden_layers"] - UNUSED_TOP_BERT_LAYERS == 3
    assert extractor.model.config.num_hidden_layers == 3
    assert not any("cls" in name for name, _ in extractor.named_parameters())  # no masked-LM head

    text = "今天下午三点开会。"
    with torch.inference_mode():
        features = extractor(text, [2] * len(text))
        inputs = extractor.tokenizer(text, return_tensors="pt")
        expected = full(**inputs, output_hidden_states=True).hidden_states[-3][0, 1:-1]
    assert features.shape == (64, 2 * len(text))
    torch.testing.assert_close(features, expected.repeat_interleave(2, dim=0).T, rtol=0, atol=0)


def test_a_bert_too_shallow_for_the_third_to_last_layer_is_refused(tmp_path):
    folder = write_bert_folder(tmp_path / "bert", dict(SIZES, num_hidden_layers=1))
    with pytest.raises(CheckpointError, match="needs at least 2"):
        BertFeatureExtractor.from_folder(folder)
