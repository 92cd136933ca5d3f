"""Scoring a model against examples: exact match and chrF of each answer.

Each answer is generated exactly as generate.py would (same settings, no shorter limit), so
the table shows the answers a user will get from the saved model. Rows are shown as they are
scored: an evaluation cut short by Ctrl-C or an error keeps what it had scored.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from ..data.instructions import Example, place
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
    rows: list[ScoredAnswer] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return sum(row.match for row in self.rows)

    @property
    def exact_match(self) -> float:
        return self.matched / len(self.rows) if self.rows else 0.0

    @property
    def chrf(self) -> float:
        if not self.rows:
            return 0.0
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


def score(answerer: Answerer, example: Example, path) -> ScoredAnswer:
    answer = answerer.answer(example.instruction, example.input, where=place(path, example.location)).text
    return ScoredAnswer(
        example.instruction,
        example.answer,
        answer,
        answer == example.answer,
        sentence_chrf(answer, example.answer),
        example.input,
    )


def evaluate_into(
    evaluation: Evaluation,
    answerer: Answerer,
    examples: list[Example],
    show: Callable[[ScoredAnswer], str],
    path,
    budget_seconds: float | None = None,
) -> None:
    """Score the examples of the file at path one by one into evaluation, printing show(row) on
    stdout for each at once; with budget_seconds, stop once that much time has been spent.
    evaluation holds every row scored so far when an interruption ends the loop."""
    started = time.monotonic()
    bar = tqdm(examples, desc="Answering", unit="instruction", total=None if budget_seconds else len(examples))
    for example in bar:
        row = score(answerer, example, path)
        evaluation.rows.append(row)
        tqdm.write(show(row), file=sys.stdout)
        sys.stdout.flush()
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            break


def _cell(text: str, width: int) -> str:
    """One table cell: newlines shown as ⏎ so that a multi-line answer keeps to its row."""
    text = text.replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


WIDTH = 38  # characters of instruction and expected answer in a table row
TABLE_HEADER = f"{'match':<5}  {'chrF':>5}  {'instruction':<{WIDTH}}  {'expected':<{WIDTH}}  answer"


def table_row(row: ScoredAnswer) -> str:
    mark = "yes" if row.match else "no"
    return (
        f"{mark:<5}  {row.chrf:5.1f}  {_cell(row.instruction, WIDTH):<{WIDTH}}  "
        f"{_cell(row.expected, WIDTH):<{WIDTH}}  {_cell(row.answer, WIDTH)}"
    )
