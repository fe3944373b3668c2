"""Choices a model makes when it loads by timing both ways on this machine, unless an environment variable forces
them: the `auto | on | off` setting, and the decision kept per process for each key (a shape, a dtype, a thread
count), so loading another model of the same shapes does not time it again."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable

from agent_tts.errors import OptionError

SETTINGS = ("auto", "on", "off")


class LoadTimeChoice:
    """One such choice: `setting()` reads its variable, `decide(key, measure)` gives on/off (measured once per key
    under `auto`)."""

    def __init__(self, variable: str) -> None:
        self.variable = variable
        self._decisions: dict[Hashable, bool] = {}
        self._lock = threading.Lock()

    def setting(self) -> str:
        """The variable's value: auto (measure; the default), on or off; anything else is an `OptionError`."""
        value = os.environ.get(self.variable, "auto").strip().lower() or "auto"
        if value not in SETTINGS:
            raise OptionError(f"{self.variable} must be one of {', '.join(SETTINGS)}, got {value!r}")
        return value

    def decide(self, key: Hashable, measure: Callable[[], bool]) -> bool:
        """On or off as the setting says; under auto, what `measure()` returned the first time for `key`."""
        setting = self.setting()
        if setting != "auto":
            return setting == "on"
        with self._lock:
            if key not in self._decisions:
                self._decisions[key] = measure()
            return self._decisions[key]
