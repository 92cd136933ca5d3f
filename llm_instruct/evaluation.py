"""Scoring a model against instruction lines: exact match of each answer."""

from dataclasses import asdict, dataclass

from tqdm.auto import tqdm

from .generation import Answerer
from .instructions import Example
from .tokens import encode_answer

# Scoring needs no more tokens than the expected answer has: anything longer is no match.
# The margin keeps enough of a wrong answer to show what went wrong.
EVAL_MARGIN_TOKENS = 16


@dataclass(frozen=True)
class ScoredAnswer:
    instruction: str
    expected: str
    answer: str
    match: bool


@dataclass(frozen=True)
class Evaluation:
    rows: list[ScoredAnswer]

    @property
    def matched(self) -> int:
        return sum(row.match for row in self.rows)

    @property
    def exact_match(self) -> float:
        return self.matched / len(self.rows)

    def summary(self) -> str:
        return f"Exact match: {self.matched}/{len(self.rows)} = {self.exact_match:.1%}"

    def to_json(self) -> dict:
        return {
            "exact_match": self.exact_match,
            "matched": self.matched,
            "total": len(self.rows),
            "answers": [asdict(row) for row in self.rows],
        }


def evaluate(answerer: Answerer, examples: list[Example]) -> Evaluation:
    rows = []
    for example in tqdm(examples, desc="Answering", unit="instruction"):
        expected_length = len(encode_answer(answerer.tokenizer, example.answer))
        limit = min(answerer.settings.max_new_tokens, expected_length + EVAL_MARGIN_TOKENS)
        answer = answerer.answer(example.instruction, max_new_tokens=limit).text
        rows.append(ScoredAnswer(example.instruction, example.answer, answer, answer == example.answer))
    return Evaluation(rows)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(evaluation: Evaluation, width: int = 38) -> str:
    header = ("match", "instruction", "expected", "answer")
    lines = [f"{header[0]:<5}  {header[1]:<{width}}  {header[2]:<{width}}  {header[3]}"]
    for row in evaluation.rows:
        mark = "yes" if row.match else "no"
        lines.append(
            f"{mark:<5}  {_clip(row.instruction, width):<{width}}  {_clip(row.expected, width):<{width}}  "
            f"{_clip(row.answer, width)}"
        )
    lines.append(evaluation.summary())
    return "\n".join(lines)
