#!/usr/bin/env python3
"""Fine-tune a causal language model on the instructions of a text file.

python instruct_ger.py --model-name tiny-bloom     # offline demo, about a minute on a CPU
python instruct_ger.py                             # the tutorial's run: bloom-1b5-clp-german, 4 epochs
python instruct_ger.py --help
"""

import sys

from llm_instruct.cli import run_cli
from llm_instruct.training.train import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
