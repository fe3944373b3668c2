"""g2pW wiring with a small synthetic ONNX model of the real interface (its choices are set by the test).

The real G2PWModel cannot be downloaded here; this model takes the same six
inputs and answers with a fixed preference per character, so the test shows
the model's answer, not pypinyin's, reaches the phones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from agent_tts.errors import AgentTTSError  # noqa: E402
from agent_tts.text.chinese.g2p import chinese_g2p  # noqa: E402
from agent_tts.text.chinese.g2pw import G2PWReader, load_g2pw  # noqa: E402
from agent_tts.text.frontend import TextFrontend  # noqa: E402

POLYPHONIC = [("行", "ㄒㄧㄥ2"), ("行", "ㄏㄤ2"), ("長", "ㄔㄤ2"), ("長", "ㄓㄤ3")]
BOPOMOFO = {"ㄒㄧㄥ": "xing", "ㄏㄤ": "hang", "ㄔㄤ": "chang", "ㄓㄤ": "zhang", "ㄌㄨ": "lu"}
# The model's (context-free) preference: 行 -> hang2, 長 -> zhang3; pypinyin would say xing2 and chang2 here.
PREFERRED = {"行": "ㄏㄤ2", "長": "ㄓㄤ3"}


def _write_model(folder: Path) -> None:
    labels = sorted({reading for _, reading in POLYPHONIC})
    chars = sorted({char for char, _ in POLYPHONIC})
    scores = np.zeros((len(chars), len(labels)), np.float32)
    for row, char in enumerate(chars):
        scores[row, labels.index(PREFERRED[char])] = 5.0
    int_inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
                  for name in ("input_ids", "token_type_ids", "attention_mask")]
    graph = helper.make_graph(
        [helper.make_node("Gather", ["scores", "char_ids"], ["char_scores"], axis=0),
         helper.make_node("Softmax", ["char_scores"], ["soft"], axis=1),
         helper.make_node("Mul", ["soft", "phoneme_mask"], ["probs"])],
        "synthetic_g2pw",
        int_inputs + [
            helper.make_tensor_value_info("phoneme_mask", TensorProto.FLOAT, ["batch", len(labels)]),
            helper.make_tensor_value_info("char_ids", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch"]),
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(labels)])],
        initializer=[numpy_helper.from_array(scores, "scores")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, folder / "g2pW.onnx")
    (folder / "POLYPHONIC_CHARS.txt").write_text("\n".join(f"{c}\t{r}" for c, r in POLYPHONIC), encoding="utf-8")
    (folder / "MONOPHONIC_CHARS.txt").write_text("路\tㄌㄨ4\n", encoding="utf-8")
    (folder / "bopomofo_to_pinyin_wo_tune_dict.json").write_text(json.dumps(BOPOMOFO, ensure_ascii=False), "utf-8")
    (folder / "config.py").write_text("use_mask = True\nuse_char_phoneme = False\n", encoding="utf-8")


@pytest.fixture(scope="module")
def reader(tmp_path_factory, gsv_v2_fixture) -> G2PWReader:
    folder = tmp_path_factory.mktemp("G2PWModel")
    _write_model(folder)
    return G2PWReader.from_folder(folder, gsv_v2_fixture / "pretrained" / "chinese-roberta-wwm-ext-large")


def test_model_choice_replaces_pypinyin_for_polyphones(reader):
    assert reader("他们行走在长长的路上") == ["ta1", "men5", "hang2", "zou3", "zai4", "zhang3", "zhang3", "de5", "lu4",
                                          "shang4"]
    phones, word2ph = chinese_g2p("他们行走在长长的路上.", reader)
    assert phones[4:6] == ["h", "ang2"] and phones[10] == phones[12] == "zh"  # tones then follow the sandhi rules
    assert len(word2ph) == len("他们行走在长长的路上.")
    without_model, _ = chinese_g2p("他们行走在长长的路上.")
    assert without_model[4:6] == ["x", "ing2"]


def test_frontend_uses_the_reader(reader):
    assert TextFrontend(pinyin_reader=reader)("行走。", "zh").phones[1:3] == ["h", "ang2"]


def test_missing_folder_means_pypinyin_without_error(tmp_path):
    assert load_g2pw(None, None) is None
    assert load_g2pw(tmp_path / "absent", tmp_path) is None
    with pytest.raises(AgentTTSError, match="not a g2pW model folder"):
        load_g2pw(tmp_path, tmp_path)
