"""Render benchmark JSON files as the Markdown tables in benchmarks/RESULTS.md.

    python -m benchmarks.report benchmarks/results/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEAD = ("| model | case | device | dtype | batch | prompt/seq tok | new tok/row | rows | median s | "
        "tokens/s | rows/s | MFU | peak MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def markdown(report: dict[str, Any]) -> str:
    lines = [HEAD]
    for r in report["results"]:
        lines.append(f"| {r['model']} | {r['case']} | {r['device']} | {r['dtype']} | {r['batch_size']} | "
                     f"{r['prompt_tokens']:.0f} | {r['new_tokens']:.1f} | {r['rows']:.1f} | {r['median_s']:.2f} | "
                     f"{r['tokens_per_s']:.1f} | {r['rows_per_s']:.2f} | {100 * r.get('mfu', 0):.1f}% | {r['peak_mb']:.0f} |")
    lines += ["", "| model | fast | baseline | rows/s ratio |", "|---|---|---|---|"]
    lines += [f"| {c['model']} | {c['fast']} | {c['baseline']} | **{c['ratio']:.2f}x** |" for c in report["ratios"]]
    rates = report.get("matmul", {})
    if rates:
        lines += ["", "| model | attainable matmul (same run) | GFLOP/s |", "|---|---|---|"]
        lines += [f"| {m} | {shape} | {rate / 1e9:.1f} |" for m, shapes in rates.items() for shape, rate in shapes.items()]
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    for path in paths:
        report = json.loads(Path(path).read_text())
        sys.stdout.write(f"\n### {Path(path).name}\n\n`{' '.join(report['argv'])}`\n\n{markdown(report)}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
