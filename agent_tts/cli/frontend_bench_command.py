"""``agent-tts bench-frontend``: time text -> phone ids for short Chinese and English sentences (BERT excluded)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

# Twenty Chinese characters each (punctuation included) and fifteen English words each.
CHINESE_SENTENCES = (
    "今天天气很好，我们一起去公园散步，好吗？",
    "您的订单已经发货，预计明天下午送到您家。",
    "请问需要帮忙吗？我可以为您查询一下账户。",
    "这个周末我打算和朋友们一起去爬山看日出。",
)
# Twenty characters each, with the numbers a support agent reads out (codes, money, times): the number rules at work.
CHINESE_NUMBER_SENTENCES = (
    "订单20231108运费2元，3天送达。",
    "您的验证码是483920，5分钟内有效。",
    "请于15:30前支付￥1,299.00。",
    "您尾号8821的银行卡已退款99.9元。",
)
ENGLISH_SENTENCES = (
    "The quick brown fox jumps over the lazy dog while we wait for the train.",
    "Your order has shipped and should arrive at your door by tomorrow afternoon at six.",
    "Could you please tell me how I can reset the password for my new account?",
    "We are planning a short trip to the mountains with some friends this coming weekend.",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-frontend",
        help="time the text frontend on short zh and en sentences",
        description="Median and p95 time to turn a 20-character Chinese sentence (without and with numbers) and a "
        "15-word English sentence into phone ids after warm-up (normalisation + G2P; BERT excluded).",
    )
    parser.add_argument("--runs", type=int, default=200, help="timed calls per language (default 200)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.set_defaults(handler=run)


def _time_calls(frontend, sentences: tuple[str, ...], language: str, runs: int) -> dict[str, float]:
    timings = []
    for index in range(runs):
        text = sentences[index % len(sentences)]
        started = time.perf_counter()
        frontend(text, language)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"median_ms": statistics.median(timings), "p95_ms": timings[int(0.95 * (len(timings) - 1))],
            "runs": runs}


def run(args: argparse.Namespace) -> int:
    from agent_tts.text.frontend import TextFrontend

    started = time.perf_counter()
    frontend = TextFrontend()
    frontend.warm_up()
    for text in CHINESE_SENTENCES + CHINESE_NUMBER_SENTENCES + ENGLISH_SENTENCES:
        frontend(text, "auto")
    print(f"warm-up (dictionaries and models loaded) {time.perf_counter() - started:.2f} s", file=sys.stderr)
    figures = {
        "zh_20_chars": _time_calls(frontend, CHINESE_SENTENCES, "zh", args.runs),
        "zh_numbers_20_chars": _time_calls(frontend, CHINESE_NUMBER_SENTENCES, "zh", args.runs),
        "en_15_words": _time_calls(frontend, ENGLISH_SENTENCES, "en", args.runs),
        "auto_zh_20_chars": _time_calls(frontend, CHINESE_SENTENCES, "auto", args.runs),
        "auto_zh_numbers_20_chars": _time_calls(frontend, CHINESE_NUMBER_SENTENCES, "auto", args.runs),
        "auto_en_15_words": _time_calls(frontend, ENGLISH_SENTENCES, "auto", args.runs),
    }
    for name, values in figures.items():
        print(f"{name:<24} median {values['median_ms']:6.2f} ms   p95 {values['p95_ms']:6.2f} ms   ({values['runs']} calls)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0
