"""A pickle module for ``torch.load`` that reads configs pickled by GPT-SoVITS's training code.

Upstream stores its ``utils.HParams`` object as a SoVITS file's ``config``;
that class cannot be imported outside GPT-SoVITS. Here every global outside a
small allow-list (torch, collections, numpy and plain builtins) is rebuilt as
:class:`PickledObject`, an attribute holder, so nothing from the file is run.
"""

from __future__ import annotations

import pickle
import types
from typing import Any

_ALLOWED_MODULE_PREFIXES = ("torch", "collections", "numpy", "_codecs")
_ALLOWED_BUILTINS = {"set", "frozenset", "slice", "range", "complex", "bytearray", "bytes", "dict", "list",
                     "tuple", "int", "float", "str", "bool"}


class PickledObject:
    """Stands in for a class of the training code; keeps the pickled attributes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


class LenientUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = module.split(".")[0] in _ALLOWED_MODULE_PREFIXES or (
            module == "builtins" and name in _ALLOWED_BUILTINS)
        if allowed:
            return super().find_class(module, name)
        return PickledObject


def _load(file: Any, **kwargs: Any) -> Any:
    return LenientUnpickler(file, **kwargs).load()


lenient_pickle = types.ModuleType("agent_tts_lenient_pickle")
lenient_pickle.__dict__.update({k: v for k, v in pickle.__dict__.items() if not k.startswith("__")})
lenient_pickle.Unpickler = LenientUnpickler
lenient_pickle.load = _load
