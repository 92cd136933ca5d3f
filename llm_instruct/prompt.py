"""The prompt template: defined once, saved beside the weights, read back for generation."""

import json
from pathlib import Path

from .cli import UserError

PLACEHOLDER = "{instruction}"
# The tutorial's training template; the answer follows the final newline directly.
DEFAULT_TEMPLATE = (
    "Es folgt eine Anweisung, die eine Aufgabe beschreibt. Schreibe eine passende Antwort. "
    "Anweisung: {instruction} Antwort: \n"
)
# What the tutorial's generate.py sent; used for model directories that carry no template.
FALLBACK_TEMPLATE = "Anweisung: {instruction}"
TEMPLATE_FILE = "prompt_template.json"


def validate_template(template: str) -> str:
    if template.count(PLACEHOLDER) != 1:
        raise UserError(f"--prompt-template must contain {PLACEHOLDER} exactly once, got {template!r}")
    return template


def format_prompt(template: str, instruction: str) -> str:
    # str.replace rather than str.format: a template may contain other braces.
    return template.replace(PLACEHOLDER, instruction)


def save_template(model_dir, template: str) -> None:
    path = Path(model_dir) / TEMPLATE_FILE
    path.write_text(json.dumps({"prompt_template": template}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def load_template(model_dir) -> str | None:
    """The template a model was trained with, or None for a directory without one (or a hub name)."""
    path = Path(model_dir) / TEMPLATE_FILE
    if not path.is_file():
        return None
    return validate_template(json.loads(path.read_text(encoding="utf-8"))["prompt_template"])
