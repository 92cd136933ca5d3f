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
from .requests import Request


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


# Instructions answered together in one beam search: the answers equal those given one at a
# time (tested for both tokenizer families; measured on fp32 and bf16, docs/benchmark.md).
ANSWER_BATCH_SIZE = 8


def answer_examples(answerer: Answerer, examples: list[Example], path) -> list[str]:
    """The answers to the examples of the file at path, generated together where there are several."""
    requests = [
        Request(example.instruction, example.input, place(path, example.location), example.history, example.system)
        for example in examples
    ]
    if len(requests) == 1:
        return [answerer.answer(requests[0]).text]
    return [answer.text for answer in answerer.answer_many(requests)]


def scored(example: Example, answer: str) -> ScoredAnswer:
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
    batch_size: int = ANSWER_BATCH_SIZE,
) -> None:
    """Score the examples of the file at path into evaluation, batch_size at a time, printing
    show(row) on stdout for each as soon as its batch is answered; with budget_seconds, stop once
    that much time has been spent. evaluation holds every row scored so far when an interruption
    ends the loop."""
    started = time.monotonic()
    with tqdm(total=None if budget_seconds else len(examples), desc="Answering", unit="instruction") as bar:
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            for example, answer in zip(batch, answer_examples(answerer, batch, path), strict=True):
                evaluation.rows.append(scored(example, answer))
                tqdm.write(show(evaluation.rows[-1]), file=sys.stdout)
            sys.stdout.flush()
            bar.update(len(batch))
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
