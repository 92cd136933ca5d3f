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


DOCUMENTS = sorted([ROOT / "README.md", ROOT / "Readme_de.md", *(ROOT / "docs").glob("*.md")])


@pytest.mark.parametrize("english", [p for p in DOCUMENTS if p.parent.name == "docs" and not p.stem.endswith("_de")])
def test_each_document_has_a_german_twin_with_the_same_commands(english):
    german = english.with_name(f"{english.stem}_de.md")
    blocks = [
        re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL) for path in (english, german)
    ]
    assert blocks[0] == blocks[1]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_leads_somewhere(document):
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text(encoding="utf-8"))
    assert [target for target in targets if not (document.parent / target).exists()] == []


@pytest.mark.parametrize("readme", ["README.md", "Readme_de.md"])
def test_the_readmes_stay_short_enough_to_read(readme):
    assert len((ROOT / readme).read_text(encoding="utf-8")) < 20_000
