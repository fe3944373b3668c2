"""The concurrency benchmark as curves: throughput and first-audio p95 against the number of streams, per engine."""

from __future__ import annotations

from pathlib import Path


def plot_concurrency(records: list[dict], path: str | Path, title: str) -> Path:
    """Two panels per stage: aggregate AR tokens/s and first-audio p95 vs streams, one line per engine and text."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    stages = sorted({record["stage"] for record in records})
    figure, axes = pyplot.subplots(len(stages), 2, figsize=(11, 4 * len(stages)), squeeze=False)
    for row, stage in enumerate(stages):
        series: dict[tuple[str, str], list[dict]] = {}
        for record in records:
            if record["stage"] == stage:
                series.setdefault((record["engine"], record["text_name"]), []).append(record)
        for (engine, text), points in sorted(series.items()):
            points.sort(key=lambda record: record["streams"])
            streams = [point["streams"] for point in points]
            style = "-o" if engine == "batched" else "--s"
            axes[row][0].plot(streams, [point["ar_tokens_per_s"] for point in points], style, label=f"{engine}, {text}")
            axes[row][1].plot(streams, [1000 * point["first_audio_p95_s"] for point in points], style,
                              label=f"{engine}, {text}")
        what = "whole pipeline" if stage == "full" else "AR decoding alone"
        axes[row][0].set(title=f"aggregate AR tokens/s ({what})", xlabel="concurrent streams", ylabel="tokens/s")
        axes[row][1].set(title=f"first {'audio' if stage == 'full' else 'token'} p95 ({what})",
                         xlabel="concurrent streams", ylabel="ms")
        for axis in axes[row]:
            axis.set_xscale("log", base=2)
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
