"""The page at `/` in a real headless browser (Debian's chromium, driven by Playwright): it loads, speaking a
text delivers audio to the page over the WebSocket and plays it with Web Audio, and Stop cancels the stream."""

from __future__ import annotations

import os
import shutil

import pytest

from server_support import fixture_server

playwright = pytest.importorskip("playwright.async_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LONG = " ".join(f"Sentence {n} of a long answer that the visitor stops." for n in range(1, 15))
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def server(gsv_v2_fixture, tmp_path_factory):
    with fixture_server(gsv_v2_fixture, tmp_path_factory.mktemp("voices")) as live:
        yield live


@pytest.fixture
async def page(server):
    if CHROMIUM is None:
        message = "no chromium browser (scripts/setup.sh installs Debian's chromium as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM,
                                               args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"])
        page = await browser.new_page()
        await page.goto(server.url + "/")
        await page.wait_for_function("document.querySelectorAll('#voice option').length > 0", timeout=WAIT_MS)
        yield page
        await browser.close()


async def stats(page) -> dict:
    return await page.evaluate("({...window.agentTTS})")


async def test_the_page_lists_the_voices_and_speaks_a_text_with_its_first_audio_time(page):
    voices = await page.eval_on_selector_all("#voice option", "options => options.map(o => o.value)")
    assert voices[0] == "fixture" and "joe" in voices
    await page.fill("#text", "Hello from the page. This is streamed speech.")
    await page.click("#speak")
    await page.wait_for_function("window.agentTTS.done", timeout=WAIT_MS)
    heard = await stats(page)
    assert heard["audioMessages"] > 1 and heard["samples"] > 32000 // 2 and not heard["cancelled"]
    assert heard["audioState"] == "running" and heard["firstAudioMs"] > 0 and not heard["errors"]
    assert (await page.inner_text("#first-audio")).endswith(" ms")
    assert (await page.inner_text("#transcript")).split() == "Hello from the page. This is streamed speech.".split()


async def test_stop_cancels_the_stream(page, server):
    before = server.metrics().get('agent_tts_streams_total{api="websocket",outcome="cancelled"}', 0)
    await page.fill("#text", LONG)
    await page.click("#speak")
    await page.wait_for_function("window.agentTTS.audioMessages > 0", timeout=WAIT_MS)
    await page.click("#stop")
    await page.wait_for_function("window.agentTTS.done", timeout=WAIT_MS)
    await page.wait_for_timeout(1000)  # anything still on its way would arrive now
    heard = await stats(page)
    assert heard["cancelled"] and heard["audioAfterDone"] == 0
    assert await page.inner_text("#status") == "stopped"
    metrics = server.metrics()
    assert metrics['agent_tts_streams_total{api="websocket",outcome="cancelled"}'] == before + 1
    assert metrics["agent_tts_work_after_cancel_total"] == 0
