"""Scoring a model against examples: exact match and chrF of each answer.

Each answer is generated exactly as generate.py would (same settings, no shorter limit), so
the table shows the answers a user will get from the saved model.
"""

from dataclasses import asdict, dataclass

from tqdm.auto import tqdm

from ..data.instructions import Example
from .generation import Answerer
from .metrics import corpus_chrf, sentence_chrf


@dataclass(frozen=True)
class ScoredAnswer:
    instruction: str
    expected: str
    answer: str
    match: bool
    chrf: float
    input: str = ""


@dataclass(frozen=True)
class Evaluation:
    rows: list[ScoredAnswer]

    @property
    def matched(self) -> int:
        return sum(row.match for row in self.rows)

    @property
    def exact_match(self) -> float:
        return self.matched / len(self.rows)

    @property
    def chrf(self) -> float:
        return corpus_chrf([row.answer for row in self.rows], [row.expected for row in self.rows])

    def summary(self) -> str:
        return f"Exact match: {self.matched}/{len(self.rows)} = {self.exact_match:.1%}, chrF: {self.chrf:.1f}"

    def to_json(self) -> dict:
        return {
            "exact_match": self.exact_match,
            "matched": self.matched,
            "total": len(self.rows),
            "chrf": self.chrf,
            "answers": [asdict(row) for row in self.rows],
        }


def evaluate(answerer: Answerer, examples: list[Example]) -> Evaluation:
    rows = []
    for example in tqdm(examples, desc="Answering", unit="instruction"):
        answer = answerer.answer(example.instruction, example.input).text
        rows.append(
            ScoredAnswer(
                example.instruction,
                example.answer,
                answer,
                answer == example.answer,
                sentence_chrf(answer, example.answer),
                example.input,
            )
        )
    return Evaluation(rows)


def _cell(text: str, width: int) -> str:
    """One table cell: newlines shown as ⏎ so that a multi-line answer keeps to its row."""
    text = text.replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(evaluation: Evaluation, width: int = 38) -> str:
    lines = [f"{'match':<5}  {'chrF':>5}  {'instruction':<{width}}  {'expected':<{width}}  answer"]
    for row in evaluation.rows:
        mark = "yes" if row.match else "no"
        lines.append(
            f"{mark:<5}  {row.chrf:5.1f}  {_cell(row.instruction, width):<{width}}  "
            f"{_cell(row.expected, width):<{width}}  {_cell(row.answer, width)}"
        )
    lines.append(evaluation.summary())
    return "\n".join(lines)
