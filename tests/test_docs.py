"""The READMEs stay true to the code: every flag of both scripts is documented in both languages."""

import re

import pytest
from conftest import ROOT

from llm_instruct.answering.answer import build_parser as generate_parser
from llm_instruct.training.train import build_parser as train_parser


def flags(parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings if option.startswith("--")} - {
        "--help"
    }


@pytest.mark.parametrize("readme", ["README.md", "Readme_de.md"])
def test_every_flag_is_documented(readme):
    text = (ROOT / readme).read_text(encoding="utf-8")
    documented = set(re.findall(r"`(--[a-z0-9-]+)", text))
    assert flags(train_parser()) | flags(generate_parser()) <= documented


def test_both_readmes_share_their_commands():
    blocks = [
        re.findall(r"```bash\n(.*?)```", (ROOT / name).read_text(encoding="utf-8"), re.DOTALL)
        for name in ("README.md", "Readme_de.md")
    ]
    assert blocks[0] == blocks[1]
