"""The prompt style: templates defined once, saved beside the weights, read back for generation.

A model answers well only when it is prompted exactly as it was trained, so the style travels
with the model in its own file: the template, Alpaca's second template for examples that
carry an input, and whether answers may span lines (which decides where generation stops).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..cli import UserError

INSTRUCTION = "{instruction}"
INPUT = "{input}"
# The tutorial's training template; the answer follows the final newline directly.
DEFAULT_TEMPLATE = (
    "Es folgt eine Anweisung, die eine Aufgabe beschreibt. Schreibe eine passende Antwort. "
    "Anweisung: {instruction} Antwort: \n"
)
# Alpaca's convention for an example with an input, in the tutorial's words.
DEFAULT_INPUT_TEMPLATE = (
    "Es folgt eine Anweisung, die eine Aufgabe beschreibt, und eine Eingabe mit weiterem Kontext. "
    "Schreibe eine passende Antwort. Anweisung: {instruction} Eingabe: {input} Antwort: \n"
)
# What the tutorial's generate.py sent; used for model directories that carry no style.
FALLBACK_TEMPLATE = "Anweisung: {instruction}"
FALLBACK_INPUT_TEMPLATE = "Anweisung: {instruction} Eingabe: {input}"
STYLE_FILE = "prompt_template.json"


def validate_template(template: str, name: str = "--prompt-template", placeholders=(INSTRUCTION,)) -> str:
    """name: where the template came from, a flag or a file's field, for the error message."""
    for placeholder in placeholders:
        if template.count(placeholder) != 1:
            raise UserError(f"{name} must contain {placeholder} exactly once, got {template!r}")
    return template


@dataclass(frozen=True)
class PromptStyle:
    template: str = DEFAULT_TEMPLATE
    input_template: str = DEFAULT_INPUT_TEMPLATE
    # True when some trained answer spans lines: generation then stops at EOS only, not at a newline.
    multiline_answers: bool = False
    # Where the templates came from, for error messages: the flags, or a saved style file's fields.
    template_names: tuple[str, str] = field(
        default=("--prompt-template", "--prompt-template-with-input"), compare=False, repr=False
    )

    def __post_init__(self):
        validate_template(self.template, self.template_names[0])
        validate_template(self.input_template, self.template_names[1], (INSTRUCTION, INPUT))

    def format(self, instruction: str, input_text: str = "") -> str:
        template = self.input_template if input_text else self.template
        values = {INSTRUCTION: instruction, INPUT: input_text}
        # One pass over the template: an instruction that itself contains "{input}" stays as written.
        return re.sub(r"\{instruction\}|\{input\}", lambda match: values[match.group(0)], template)


FALLBACK_STYLE = PromptStyle(FALLBACK_TEMPLATE, FALLBACK_INPUT_TEMPLATE)


def save_style(model_dir, style: PromptStyle) -> None:
    record = {
        "prompt_template": style.template,
        "prompt_template_with_input": style.input_template,
        "multiline_answers": style.multiline_answers,
    }
    text = json.dumps(record, ensure_ascii=False, indent=2) + "\n"
    (Path(model_dir) / STYLE_FILE).write_text(text, encoding="utf-8")


def load_style(model_dir) -> PromptStyle | None:
    """The style a model was trained with, or None for a directory without one (or a hub name).

    A damaged file is an error naming it: a model prompted with a guessed template answers
    badly without saying why.
    """
    path = Path(model_dir) / STYLE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UserError(f"{path}: cannot be read as JSON ({error}); restore it or train the model anew") from None
    if not isinstance(record, dict) or not isinstance(record.get("prompt_template"), str):
        raise UserError(f"{path}: expected a JSON object with the string 'prompt_template'")
    # Directories written before the input template and the multi-line flag existed hold the template alone.
    input_template = record.get("prompt_template_with_input", DEFAULT_INPUT_TEMPLATE)
    multiline = record.get("multiline_answers", False)
    if not isinstance(input_template, str) or not isinstance(multiline, bool):
        raise UserError(f"{path}: 'prompt_template_with_input' must be a string and 'multiline_answers' true or false")
    names = (f"{path}: 'prompt_template'", f"{path}: 'prompt_template_with_input'")
    return PromptStyle(record["prompt_template"], input_template, multiline, template_names=names)
