# The two commands of the README: `make demo` (the main job) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed
FIXTURE ?= ../shared/fixtures/gsv-v2

.PHONY: demo test setup

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

# Until the conversational demo lands, the main job proves the models against the reference fixture.
demo: $(STAMP)
	@echo "agent-tts: the spoken-conversation demo is not built yet; running the GPT-SoVITS parity check on $(FIXTURE) instead."
	$(VENV)/bin/agent-tts parity $(FIXTURE)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q
