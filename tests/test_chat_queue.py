"""Live-chat rules of the VTuber voice: priority lines barge in, junk, repeats and floods are skipped."""

from agent_tts.chat_queue import ChatQueue, Verdict


def test_normal_lines_queue_in_order_and_priority_lines_barge_in():
    queue = ChatQueue()
    assert queue.offer("alice: hello stream!", now=0).verdict is Verdict.QUEUED
    assert queue.offer("bob: what game is this?", now=1).verdict is Verdict.QUEUED
    decision = queue.offer("carol: $5 happy birthday!", now=2)
    assert decision.verdict is Verdict.BARGE_IN and decision.line.priority and decision.line.user == "carol"
    assert queue.offer("mod: !say We start in five minutes", now=3).line.text == "We start in five minutes"
    assert [queue.next_line().text for _ in range(4)] == [
        "We start in five minutes", "$5 happy birthday!", "hello stream!", "what game is this?"]
    assert queue.next_line() is None


def test_junk_repeats_and_floods_are_skipped_with_a_reason():
    queue = ChatQueue(user_max_lines=2, user_window_s=10)
    assert queue.offer("🙂🙂🙂").reason == "nothing to say"
    assert queue.offer("dave: https://spam.example/x").reason == "nothing to say"
    assert queue.offer("erin: nice play", now=0).verdict is Verdict.QUEUED
    assert queue.offer("frank: Nice   PLAY", now=1).reason == "repeated"
    assert queue.offer("gina: one", now=0).verdict is Verdict.QUEUED
    assert queue.offer("gina: two", now=1).verdict is Verdict.QUEUED
    assert "too often" in queue.offer("gina: three", now=2).reason
    assert queue.offer("gina: four", now=20).verdict is Verdict.QUEUED  # the window has passed


def test_a_full_queue_drops_its_oldest_normal_line_and_long_lines_are_cut():
    queue = ChatQueue(max_queue=2, max_chars=30)
    queue.offer("a: first line here", now=0)
    queue.offer("b: second line here", now=0)
    queue.offer("c: third line here", now=0)
    assert [line.text for line in queue.queue] == ["second line here", "third line here"]
    long = queue.offer("d: " + "word " * 40, now=0).line.text
    assert len(long) <= 33 and long.endswith("...")
