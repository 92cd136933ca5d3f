#!/usr/bin/env python3
"""Answer instructions with a model trained by instruct_ger.py.

echo "Nenne drei Flüsse." | python generate.py --model-name instruct_ger/instruct_ger_bsp_1_tiny
python generate.py --model-name instruct_ger/instruct_ger_bsp_1_tiny "Sage mir einen Zauberspruch zu drei Gewürzen."
python generate.py --help
"""

import sys

from llm_instruct.answering.answer import main
from llm_instruct.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
