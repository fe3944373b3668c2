"""Rows of the gsv-v2 reference fixture where agent-tts reads the text differently, on purpose.

Each entry is a reference reading that is wrong or lossy; docs/frontend.md
explains them. `agent-tts parity` reports these rows as documented
differences; any other differing row is a failure.
"""

from __future__ import annotations

KNOWN_DEVIATIONS: dict[str, str] = {
    "Dr. Smith paid $1,250 for 3 tickets on Jan. 5th.":
        'reference reads "Dr." as "drive", "$1,250" as "twelve fifty dollars" and "Jan." as "Jan"; '
        'ours: "Doctor", "one thousand two hundred fifty dollars", "January"',
    "这个API的latency只有200ms。":
        'reference reads "200ms" as "two hundred" + "Ms" (M IH1 Z); ours reads a number and its unit in a Chinese '
        'sentence in Chinese: 两百毫秒',
    "It's 7:30 p.m. and the temperature is -5 degrees.":
        'reference reads "7:30 p.m." as "seven thirty a.m. p.m." (A, period, M, period, P, period, M, period); '
        'ours: "seven thirty P M"',
    "Please call 555-0199, or visit www.example.com.":
        'reference reads the phone number as "five hundred fifty-five-one hundred ninety-nine" and drops the dots '
        'of the address; ours: "five five five, zero one nine nine" and "W W W dot example dot com"',
    "Hello，欢迎使用GPT-SoVITS语音合成。":
        "reference drops the comma after \"Hello\" where the text turns from English to Chinese; ours keeps the pause",
    "😀😀":
        "nothing speakable: the reference's language splitter sends emoji to the English cleaner, which prefixes "
        "a comma (\", .\"); ours keeps the Chinese cleaner's \".\" (both are silence)",
}
