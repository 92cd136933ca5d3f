"""generate.py: answer instructions from stdin or the command line with a trained model."""

import argparse
import json
import sys

from transformers.utils import logging as hf_logging

from ..cli import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    HelpFormatter,
    UserError,
    log,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from ..data.instructions import EVAL_PART, TRAIN_PART, Example, decode_line
from ..data.prompt import FALLBACK_STYLE, INPUT, INSTRUCTION, PromptStyle, load_style
from ..data.sources import ALL, read_examples
from ..models.modeldir import find_model, load_tokenizer_and_model
from ..planning import precision
from ..planning.device import choose_dtype, resolve_device
from .chat import RESET_COMMAND, Conversation
from .evaluation import ANSWER_BATCH_SIZE, TABLE_HEADER, Evaluation, ScoredAnswer, evaluate_into, table_row
from .generation import Answer, Answerer, GenerationSettings
from .requests import STDIN, Request, argument_requests, numbered_lines, stdin_requests

DEFAULT_MODEL = "instruct_ger/instruct_ger_bsp_1_1b5_ep4"
DEFAULT_SETTINGS = GenerationSettings()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Answer instructions with a model trained by instruct_ger.py (one instruction per stdin line).",
        epilog='Example: echo "Nenne drei Flüsse." | python generate.py --model-name instruct_ger/instruct_ger_bsp_1_tiny',
        formatter_class=HelpFormatter,
    )
    parser.add_argument("instructions", nargs="*", help="instructions to answer instead of reading stdin")
    parser.add_argument("--model-name", default=DEFAULT_MODEL, help="model directory (or hub name)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA if present")
    parser.add_argument(
        "--dtype",
        choices=["auto", "float16", "bfloat16", "float32"],
        default="auto",
        help="auto: float16 on CUDA; on a CPU bfloat16 where a quick measurement finds it faster, else float32",
    )
    parser.add_argument(
        "--max-new-tokens", type=positive_int, default=DEFAULT_SETTINGS.max_new_tokens, help="answer length limit"
    )
    parser.add_argument("--num-beams", type=positive_int, default=DEFAULT_SETTINGS.num_beams, help="beam width")
    parser.add_argument(
        "--no-repeat-ngram-size",
        type=non_negative_int,
        default=DEFAULT_SETTINGS.no_repeat_ngram_size,
        help="forbid repeating n-grams, the prompt's included (the tutorial used 2); 0: off",
    )
    parser.add_argument("--sample", action="store_true", help="sample instead of beam search")
    parser.add_argument(
        "--temperature", type=positive_float, help=f"with --sample (default: {DEFAULT_SETTINGS.temperature})"
    )
    parser.add_argument("--top-p", type=probability, help=f"with --sample (default: {DEFAULT_SETTINGS.top_p})")
    parser.add_argument("--stop", action="append", default=[], help="extra stop string (repeatable)")
    parser.add_argument("--raw", action="store_true", help="send each line as it is, without the prompt template")
    parser.add_argument(
        "--jsonl", action="store_true", help="one JSON object per answer (with --eval: per scored answer) on stdout"
    )
    parser.add_argument(
        "--jsonl-input",
        action="store_true",
        help='read stdin as JSON lines: {"instruction": ..., "input": ...} (input optional), or a conversation '
        'ending with the user turn to answer: {"messages": [...]}',
    )
    parser.add_argument(
        "--chat",
        action="store_true",
        help=f"a conversation on stdin: each answer sees the turns before it; an empty line or {RESET_COMMAND} starts over",
    )
    parser.add_argument(
        "--eval", metavar="FILE", help="score the model on an instruction file (any format) and print a table"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=ANSWER_BATCH_SIZE,
        help="with --eval: instructions answered together (the same answers as one at a time, in less time)",
    )
    parser.add_argument(
        "--eval-lines",
        choices=[EVAL_PART, TRAIN_PART, ALL],
        default=EVAL_PART,
        help="with --eval: which lines of the file to score",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow model code from the hub (only for models you trust)"
    )
    return parser


def generation_settings(args) -> GenerationSettings:
    if (args.temperature is not None or args.top_p is not None) and not args.sample:
        raise UserError("--temperature and --top-p take effect only with --sample")
    if "" in args.stop:
        raise UserError("--stop needs a non-empty string")
    return GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        num_beams=args.num_beams,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        sample=args.sample,
        temperature=DEFAULT_SETTINGS.temperature if args.temperature is None else args.temperature,
        top_p=DEFAULT_SETTINGS.top_p if args.top_p is None else args.top_p,
        stop=tuple(args.stop),
    )


def prompt_style(args, tokenizer) -> PromptStyle:
    """The style the model was trained with; --raw keeps its answer format but sends lines unwrapped."""
    style = load_style(args.model_name)
    if style is None:
        if not args.raw and not getattr(tokenizer, "chat_template", None):
            log(
                f"Notice: {args.model_name} holds no prompt template; using the tutorial's {FALLBACK_STYLE.template!r}."
            )
        style = FALLBACK_STYLE
    if args.raw:
        return PromptStyle(INSTRUCTION, f"{INSTRUCTION}\n{INPUT}", style.multiline_answers)
    return style


def inference_dtype(args, device: str):
    faster_in_bf16 = args.dtype == "auto" and device == "cpu" and precision.bf16_decodes_faster_here()
    dtype = choose_dtype(args.dtype, device, faster_in_bf16)
    if faster_in_bf16:
        log(
            "Notice: this CPU decodes faster in bfloat16, so answers are generated in bfloat16 (--dtype float32 to change)."
        )
    return dtype


def load_answerer(args, settings: GenerationSettings, out) -> Answerer:
    device = resolve_device(args.device)
    source = find_model(args.model_name)  # a wrong name fails here, before any measurement or loading
    print(f"Load model: {args.model_name}", file=out, flush=True)
    tokenizer, model = load_tokenizer_and_model(
        source, dtype=inference_dtype(args, device), trust_remote_code=args.trust_remote_code
    )
    model.to(device).eval()
    return Answerer(model, tokenizer, prompt_style(args, tokenizer), settings, use_chat_template=not args.raw)


def binary_stdin():
    """Standard input as bytes; a closed one is an error before the model loads."""
    if sys.stdin is None:
        raise UserError("standard input is closed; give the instructions as arguments or on standard input")
    return getattr(sys.stdin, "buffer", sys.stdin)


class Rejections:
    """Counts the input lines that could not be answered, each reported as it comes."""

    def __init__(self):
        self.count = 0

    def __call__(self, error: UserError) -> None:
        self.count += 1
        log(f"error: {error}")


def streams_answers(answerer: Answerer, args) -> bool:
    """Whether answers are printed token by token: greedy answers to a terminal, not JSON."""
    return answerer.settings.num_beams == 1 and not args.jsonl and sys.stdout.isatty()


def answer_all(answerer: Answerer, args, requests, out) -> None:
    stream = streams_answers(answerer, args)
    conversation = not args.instructions
    if conversation:
        print("Prompt:", file=out, flush=True)
    try:
        for request in requests:
            answer_one(answerer, request, args.jsonl, stream)
            if conversation and not args.jsonl:
                print("Prompt:", flush=True)
    except KeyboardInterrupt:  # Ctrl-C ends a conversation like the end of input does
        print(file=out)


def answer_one(answerer: Answerer, request: Request, jsonl: bool, stream: bool) -> Answer:
    if jsonl:
        answer = answerer.answer(request)
        record = {"instruction": request.instruction, **({"input": request.input} if request.input else {})}
        record.update(response=answer.text, new_tokens=answer.new_tokens, seconds=round(answer.seconds, 3))
        print(json.dumps(record, ensure_ascii=False), flush=True)
        return answer
    print(f"Command: {request.instruction}")
    if request.input:
        print(f"Input: {request.input}")
    print("Response:", flush=True)
    answer = answerer.answer(request, stream=stream)
    if not stream:
        print(answer.text, flush=True)
    return answer


def converse(answerer: Answerer, args, stdin, rejected: Rejections, out) -> None:
    """--chat: answer each line of stdin given the conversation so far (chat.py)."""
    stream = streams_answers(answerer, args)
    conversation = Conversation(answerer)
    print("Prompt:", file=out, flush=True)
    try:
        for number, raw in numbered_lines(stdin):
            try:
                line = decode_line(raw, STDIN, number).strip()
            except UserError as error:
                rejected(error)
                continue
            if not line or line == RESET_COMMAND:
                conversation.reset()
                log("New conversation.")
            else:
                request = conversation.ask(line, f"{STDIN}:{number}")
                conversation.record(request, answer_one(answerer, request, args.jsonl, stream).text)
            if not args.jsonl:
                print("Prompt:", flush=True)
    except KeyboardInterrupt:
        print(file=out)


def jsonl_row(row: ScoredAnswer) -> str:
    record = {"instruction": row.instruction, **({"input": row.input} if row.input else {})}
    record.update(expected=row.expected, response=row.answer, match=row.match, chrf=round(row.chrf, 2))
    return json.dumps(record, ensure_ascii=False)


def score_file(answerer: Answerer, path, examples: list[Example], jsonl: bool, batch_size: int) -> int:
    """Print each scored answer as it comes and the summary of what was scored, also after Ctrl-C."""
    summary = log if jsonl else print
    if not jsonl:
        print(TABLE_HEADER, flush=True)
    evaluation = Evaluation()
    try:
        evaluate_into(evaluation, answerer, examples, jsonl_row if jsonl else table_row, path, None, batch_size)
    except KeyboardInterrupt:
        log(f"Interrupted after {len(evaluation.rows)} of {len(examples)} answers.")
        summary(evaluation.summary())
        return EXIT_INTERRUPTED
    summary(evaluation.summary())
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    hf_logging.disable_progress_bar()  # a bar for loading a few weight files says nothing
    # With --jsonl, stdout carries the JSON records alone.
    out = sys.stderr if args.jsonl else sys.stdout
    # Everything that can be checked is checked before the model loads.
    settings = generation_settings(args)
    if args.chat and (args.instructions or args.eval or args.jsonl_input):
        raise UserError(
            "--chat reads a conversation line by line from stdin; it takes no instructions as arguments, "
            "no --eval and no --jsonl-input"
        )
    examples = read_examples(args.eval, args.eval_lines) if args.eval else None
    stdin = binary_stdin() if examples is None and not args.instructions else None
    answerer = load_answerer(args, settings, out)
    if examples is not None:
        return score_file(answerer, args.eval, examples, args.jsonl, args.batch_size)
    rejected = Rejections()
    requests = (
        argument_requests(args.instructions) if args.instructions else stdin_requests(stdin, args.jsonl_input, rejected)
    )
    if args.chat:
        converse(answerer, args, stdin, rejected, out)
    else:
        answer_all(answerer, args, requests, out)
    return EXIT_USAGE if rejected.count else 0
