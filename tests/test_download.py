"""`agent-tts download`: files from a hub arrive whole, with progress; offline it fails at once, clearly."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
import time

import pytest

from agent_tts.download import download_pretrained
from agent_tts.errors import AgentTTSError
from system_support import without_network
from child_process import run_child


@pytest.fixture
def local_hub(tmp_path):
    served = tmp_path / "hub"
    (served / "chinese-hubert-base").mkdir(parents=True)
    (served / "chinese-hubert-base" / "config.json").write_text('{"model_type": "hubert"}')
    (served / "chinese-hubert-base" / "pytorch_model.bin").write_bytes(bytes(range(256)) * 8192)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


def test_download_fetches_missing_files_whole_and_skips_present_ones(local_hub, tmp_path, capsys):
    url, served = local_hub
    files = ("chinese-hubert-base/config.json", "chinese-hubert-base/pytorch_model.bin")
    target = tmp_path / "pretrained"
    fetched = download_pretrained(target, hub=url, files=files)
    assert [path.relative_to(target).as_posix() for path in fetched] == list(files)
    for name in files:
        assert (target / name).read_bytes() == (served / name).read_bytes()
    assert not list(target.rglob("*.part"))
    assert "MB/s" in capsys.readouterr().err
    assert download_pretrained(target, hub=url, files=files) == []


def test_download_errors_name_the_problem_and_leave_no_partial_file(local_hub, tmp_path):
    url, _ = local_hub
    target = tmp_path / "pretrained"
    with pytest.raises(AgentTTSError, match="answered 404"):
        download_pretrained(target, hub=url, files=("chinese-hubert-base/absent.bin",))
    with pytest.raises(AgentTTSError, match="offline.*copy the folders"):
        download_pretrained(target, hub="http://127.0.0.1:9", files=("chinese-hubert-base/config.json",))
    assert not [path for path in target.rglob("*") if path.is_file()]


def test_download_command_without_network(tmp_path):
    command = without_network([sys.executable, "-m", "agent_tts.cli.main", "download", "--dir", str(tmp_path)])
    started = time.perf_counter()
    completed = run_child(command, timeout=120)
    assert completed.returncode == 2
    assert "seems to be offline" in completed.stderr
    assert time.perf_counter() - started < 30
