# The two commands of the README: `make demo` (the main job) and `make test`; `make test-realtime-loaded` runs the
# real-time audio tests on a busy machine.
VENV := .venv
STAMP := $(VENV)/.installed
FIXTURE ?= ../shared/fixtures/gsv-v2

.PHONY: demo test setup parity test-realtime-loaded

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

# The tests that play in real time, RUNS times in a row, each beside HOGS busy processes (scripts/cpu_hog.py) that
# are stopped at the end; the first failing run stops it. They pass or fail on behaviour; the speed figures they
# print (barge-in stop, flush, underruns, event-loop lateness) are the loaded ones.
REALTIME_TESTS := tests/test_barge_in.py tests/test_spoken_context.py tests/test_pipecat_playback.py tests/test_transport_faults.py \
	tests/test_demos.py tests/test_player.py
RUNS ?= 10
HOGS ?= 2

test-realtime-loaded: $(STAMP)
	@$(VENV)/bin/python scripts/cpu_hog.py $(HOGS) 36000 & hog=$$!; trap 'kill $$hog 2>/dev/null' EXIT; \
	for run in $$(seq $(RUNS)); do \
		started=$$(date +%s); \
		$(VENV)/bin/python -m pytest -q -s -p no:cacheprovider $(REALTIME_TESTS) || exit 1; \
		echo "== loaded run $$run of $(RUNS) passed in $$(( $$(date +%s) - started )) s"; \
	done
