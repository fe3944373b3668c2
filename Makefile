# The two commands of the README: `make demo` (the main job) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed
FIXTURE ?= ../shared/fixtures/gsv-v2

.PHONY: demo test setup parity

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

# The main job: a scripted spoken conversation on the registered voice, else the bundled default voice.
demo: $(STAMP)
	$(VENV)/bin/agent-tts converse

parity: $(STAMP)
	$(VENV)/bin/agent-tts parity $(FIXTURE)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q
