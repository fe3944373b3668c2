"""Stress and soak runs of the streaming engine (`agent-tts stress`): cancel storms, long sessions, fuzzed input.

Each run drives a real engine through its public surface (`stream()`,
`aclose()`, task cancellation, `cancel_active()`, the pipecat service's
`InterruptionFrame`) and returns a report of what it measured, with the
invariants it checks (no hang, nothing after a cancel, nothing leaked, only
`AgentTTSError` escapes). Tests run small counts; the full counts are for a
person measuring once (figures in docs/benchmarks.md).
"""
