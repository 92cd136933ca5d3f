#!/usr/bin/env python3
"""Answer quality of training choices, measured the way the tests measure the demo.

    python bench/quality.py --variant=--no-group-by-length --variant=--group-by-length
    python bench/quality.py --variant="--precision fp32" --variant="--precision bf16" --seeds 1

For every file, seed and variant (extra instruct_ger.py flags), tiny-bloom is trained on the file
(60 epochs at learning rate 1e-3 unless a variant says otherwise), then generate.py scores it in
float32: exact match over the training lines (did it learn them?) and chrF over the held-out
lines (how close do new instructions come?). Each run starts from random weights, so the
held-out figures measure chance as much as anything; the means over seeds are what to compare.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "instruct_ger_bsp_1.txt", ROOT / "bench" / "instruct_ger_bsp_2.txt"]
SUMMARY = re.compile(r"Exact match: (\d+)/(\d+) = [\d.]+%, chrF: ([\d.]+)")


def run(command: list[str]) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {completed.stderr.strip().splitlines()[-1]}")
    return completed.stdout + completed.stderr


def score(model_dir: Path, path: Path, lines: str) -> tuple[int, int, float]:
    """(matched, total, chrF) of generate.py --eval over the file's train or eval lines, in float32."""
    output = run([sys.executable, "generate.py", "--model-name", str(model_dir), "--dtype", "float32",
                  "--eval", str(path), "--eval-lines", lines])  # fmt: skip
    matched, total, chrf = SUMMARY.findall(output)[-1]
    return int(matched), int(total), float(chrf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", required=True, help="extra instruct_ger.py flags (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", default="60")
    parser.add_argument("--learning-rate", default="1e-3")
    args = parser.parse_args()
    rows = [
        "| file | variant | training answers exact (per seed) | mean | held-out chrF (per seed) | mean |",
        "|" + "---|" * 6,
    ]
    with tempfile.TemporaryDirectory(prefix="llm-instruct-quality-") as scratch:
        for path in FILES:
            for variant in args.variant:
                exact, chrf = [], []
                for seed in args.seeds:
                    output = Path(scratch) / f"{path.stem}-{len(rows)}-{seed}"
                    run([sys.executable, "instruct_ger.py", "--model-name", "tiny-bloom", "--input-file", str(path),
                         "--output-dir", str(output), "--output-model", "m", "--seed", str(seed),
                         "--epochs", args.epochs, "--learning-rate", args.learning_rate, *variant.split()])  # fmt: skip
                    matched, total, _ = score(output / "m", path, "train")
                    exact.append(matched / total)
                    chrf.append(score(output / "m", path, "eval")[2])
                    print(f"{path.name} {variant} seed {seed}: {matched}/{total} exact, held-out chrF {chrf[-1]:.1f}",
                          flush=True)  # fmt: skip
                rows.append(
                    f"| {path.name} | `{variant}` | {', '.join(f'{e:.1%}' for e in exact)} | "
                    f"{statistics.mean(exact):.1%} | {', '.join(f'{c:.1f}' for c in chrf)} | {statistics.mean(chrf):.1f} |"
                )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
