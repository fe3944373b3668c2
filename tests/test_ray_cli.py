"""`agent-tts serve --ray`'s options, without starting Ray: what reaches the Ray Serve application, and the one-line
errors for options that need --ray or have bad values (tests/test_ray_serve.py runs the application itself)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'agent-tts[ray]')")

from agent_tts.cli.main import build_parser, main  # noqa: E402
from agent_tts.cli.serve_command import ray_args_from  # noqa: E402


def test_the_command_line_reaches_the_application():
    args = build_parser().parse_args(["serve", "--ray", "--autoscale", "1", "4", "--num-cpus", "0.5", "--num-gpus",
                                      "0.25", "--voices-per-replica", "2", "--max-queued", "8", "--busy-status", "429",
                                      "--max-streams", "6", "--voice", "alice", "--shutdown-deadline", "3",
                                      "--allow-dir", "/srv/voices", "--precision", "int8", "--backend", "openvino"])
    ray_args = ray_args_from(args)
    assert (ray_args.autoscale, ray_args.num_cpus, ray_args.num_gpus) == ((1, 4), 0.5, 0.25)
    assert (ray_args.voices_per_replica, ray_args.max_queued_requests, ray_args.busy_status) == (2, 8, 429)
    assert (ray_args.max_streams, ray_args.voice, ray_args.shutdown_deadline) == (6, "alice", 3.0)
    assert ray_args.scaling()["autoscaling_config"]["target_ongoing_requests"] == 3.0  # half of max_streams
    assert [str(path) for path in ray_args.settings().allowed_dirs] == ["/srv/voices"]
    replica = ray_args.replica_config()  # what each replica's LocalSpeechService is made with
    assert (replica.precision, replica.backend, replica.max_streams, replica.voices_per_replica) == \
        ("int8", "openvino", 6, 2)
    assert ray_args_from(build_parser().parse_args(["serve", "--ray"])).scaling() == {"num_replicas": 1}


@pytest.mark.parametrize("argv, message", [
    (["serve", "--replicas", "2"], "--replicas is an option of --ray"),
    (["serve", "--address", "auto"], "--address is an option of --ray"),
    (["serve", "--ray", "--autoscale", "3", "1"], "--autoscale: needs 0 <= MIN <= MAX and MAX >= 1, got MIN 3, MAX 1"),
    (["serve", "--ray", "--replicas", "0"], "--replicas: Input should be greater than or equal to 1"),
    (["serve", "--ray", "--num-cpus", "-1"], "--num-cpus: Input should be greater than or equal to 0"),
])
def test_bad_ray_options_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_serve_config_files_args_build_the_application():
    """What a KubeRay RayService's serveConfigV2 passes: `args` as a mapping, checked by field name."""
    from pydantic import ValidationError

    from ray import serve

    from agent_tts.server.ray_app import build_app

    app = build_app({"replicas": 2, "num_gpus": 1, "voices_per_replica": 8})
    assert isinstance(app, serve.Application)
    with pytest.raises(ValidationError, match="replica"):
        build_app({"replica": 2})
