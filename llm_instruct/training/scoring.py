"""After training: answer evaluation examples with the model as saved, and complete its report.

With an evaluation split (an _EVAL_ marker, split 'eval' records or --eval-file) every
evaluation example is answered. Without one, only training examples are there, and answering
all of them can take longer than training did (52,000 Alpaca examples at seconds an answer on
a CPU). The run then answers training examples drawn at random for at most a small share of
its training time (planning.plan.EVALUATION_SHARE), and says so. The model directory is
already in place: a Ctrl-C here keeps it and what was scored.
"""

import random
import time
from dataclasses import dataclass

from accelerate.utils import extract_model_from_parallel

from ..answering.evaluation import ANSWER_BATCH_SIZE, TABLE_HEADER, Evaluation, evaluate_into, table_row
from ..answering.generation import Answerer, GenerationSettings
from ..cli import StoppedEarly, log
from ..data.instructions import Example, InstructionSet
from ..data.prompt import PromptStyle
from ..planning import precision
from ..planning.device import choose_dtype
from ..planning.plan import EVALUATION_SHARE, describe_duration
from .report import write_report


@dataclass(frozen=True)
class EvaluationPlan:
    examples: list[Example]  # in the order they are answered
    path: str  # the file they come from
    sampled: bool  # training examples drawn at random, answered within the time share


def evaluation_plan(instructions: InstructionSet, input_file, eval_file, seed: int) -> EvaluationPlan:
    if instructions.eval_is_train:
        drawn = random.Random(seed).sample(instructions.train, len(instructions.train))
        return EvaluationPlan(drawn, str(input_file), sampled=True)
    return EvaluationPlan(instructions.eval, str(eval_file or input_file), sampled=False)


def answerer_for(model, tokenizer, style: PromptStyle, device: str) -> Answerer:
    """The trained model answering as generate.py will answer with the saved one: same device, same
    dtype, and without the autocast that mixed-precision training wrapped its forward pass in."""
    model = extract_model_from_parallel(model, keep_fp32_wrapper=False)
    faster_in_bf16 = device == "cpu" and precision.bf16_decodes_faster_here()
    model = model.to(device=device, dtype=choose_dtype("auto", device, faster_in_bf16)).eval()
    return Answerer(model, tokenizer, style, GenerationSettings())


def score_command(model_dir, plan: EvaluationPlan) -> str:
    return f"python generate.py --model-name {model_dir} --eval {plan.path}"


def score_model(answerer: Answerer, plan: EvaluationPlan, training_seconds: float, report: dict, model_dir) -> None:
    """Answer and score, printing each row as it comes; the report gets what was scored."""
    budget = EVALUATION_SHARE * training_seconds if plan.sampled else None
    if plan.sampled:
        print(
            f"Evaluation: no evaluation split, so training examples drawn at random are answered for "
            f"{describe_duration(budget)} ({EVALUATION_SHARE:.0%} of the training time)",
            flush=True,
        )
    print(TABLE_HEADER, flush=True)
    evaluation = Evaluation()
    started = time.perf_counter()
    try:
        evaluate_into(evaluation, answerer, plan.examples, table_row, plan.path, budget, ANSWER_BATCH_SIZE)
    except KeyboardInterrupt:
        report["seconds"]["answering"] = time.perf_counter() - started
        record(report, evaluation, plan, complete=False)
        write_report(model_dir, report)
        log(evaluation.summary())
        raise StoppedEarly(
            f"Interrupted during the evaluation after {len(evaluation.rows)} of {len(plan.examples)} answers. "
            f"The model is saved in {model_dir}; score it with: {score_command(model_dir, plan)}"
        ) from None
    summary = evaluation.summary()
    if plan.sampled:
        summary += f" ({len(evaluation.rows)} of {len(plan.examples)} training examples, drawn at random)"
    print(summary, flush=True)
    report["seconds"]["answering"] = time.perf_counter() - started
    record(report, evaluation, plan, complete=True)
    write_report(model_dir, report)


def record(report: dict, evaluation: Evaluation, plan: EvaluationPlan, complete: bool) -> None:
    report["evaluation"] = {
        **evaluation.to_json(),
        "examples": "training examples drawn at random" if plan.sampled else "evaluation examples",
        "available": len(plan.examples),
        "complete": complete,
    }
