"""Conversation records: exact parse results and errors, and the token ids and labels they train."""

import copy
import json

import pytest
from conftest import template_start
from tokenizers import normalizers, pre_tokenizers

from llm_instruct.cli import UserError
from llm_instruct.data.chat_template import chat_format, conversation_messages, end_of_turn_ids
from llm_instruct.data.instructions import Example, InstructionFileError, Turn
from llm_instruct.data.prompt import PromptStyle
from llm_instruct.data.records import Record, read_json, read_jsonl
from llm_instruct.data.tokens import IGNORE_INDEX, CompletionOnlyCollator, encode_examples

STYLE = PromptStyle()
SYSTEM = "Antworte kurz."
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Nenne einen Fluss."},
    {"role": "assistant", "content": "Der Rhein."},
    {"role": "user", "content": "Und noch einen?"},
    {"role": "assistant", "content": "Die Elbe."},
]
SHAREGPT = [
    {"from": {"system": "system", "user": "human", "assistant": "gpt"}[m["role"]], "value": m["content"]}
    for m in MESSAGES
]
FIRST = Example("Nenne einen Fluss.", "Der Rhein.", 1, system=SYSTEM)
SECOND = Example("Und noch einen?", "Die Elbe.", 1, history=(Turn("Nenne einen Fluss.", "Der Rhein."),), system=SYSTEM)


def write_jsonl(tmp_path, *records):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture(params=["bpe_tokenizer", "sentencepiece_tokenizer"])
def tokenizer(request):
    return request.getfixturevalue(request.param)


def test_each_assistant_turn_is_an_example_with_the_turns_before_it(tmp_path):
    path = write_jsonl(tmp_path, {"messages": MESSAGES, "split": "eval"})
    assert read_jsonl(path) == [Record(FIRST, "eval"), Record(SECOND, "eval")]


def test_sharegpt_records_read_as_the_same_examples(tmp_path):
    assert read_jsonl(write_jsonl(tmp_path, {"conversations": SHAREGPT})) == [
        Record(FIRST, "train"),
        Record(SECOND, "train"),
    ]


def test_instruction_and_conversation_records_mix_an_instruction_being_one_turn(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"instruction": "Hallo!", "output": "Hallo."}, {"messages": MESSAGES[1:3]}]))
    assert read_json(path) == [
        Record(Example("Hallo!", "Hallo.", "record 1"), "train"),
        Record(Example("Nenne einen Fluss.", "Der Rhein.", "record 2"), "train"),
    ]


def test_a_user_turn_may_carry_an_input(tmp_path):
    turns = [{"role": "user", "content": "Übersetze.", "input": "Haus"}, {"role": "assistant", "content": "house"}]
    assert read_jsonl(write_jsonl(tmp_path, {"messages": turns})) == [
        Record(Example("Übersetze.", "house", 1, input="Haus"), "train")
    ]


USER, ASSISTANT = {"role": "user", "content": "Frage?"}, {"role": "assistant", "content": "Antwort."}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"messages": [{"content": "Frage?"}, ASSISTANT]}, "turn 1: missing 'role'"),
        (
            {"messages": [{"role": "bot", "content": "Frage?"}, ASSISTANT]},
            "turn 1: unknown role 'bot'; known: system, user, assistant",
        ),
        (
            {"conversations": [{"from": "user", "value": "Frage?"}, {"from": "model", "value": "A"}]},
            "turn 2: unknown role 'model'; known: system, human, gpt, user, assistant",
        ),
        ({"messages": [USER, USER, ASSISTANT]}, "turn 2: two user turns in a row"),
        ({"messages": [USER, ASSISTANT, ASSISTANT]}, "turn 3: two assistant turns in a row"),
        ({"messages": [ASSISTANT, USER]}, "turn 1: an assistant turn before any user turn"),
        ({"messages": [USER, ASSISTANT, USER]}, "the conversation does not end with an assistant turn"),
        ({"messages": [{"role": "user", "content": "  "}, ASSISTANT]}, "turn 1: empty 'content'"),
        ({"messages": [USER, {"role": "assistant", "content": 3}]}, "turn 2: 'content' must be a string, found number"),
        ({"messages": [USER, {"role": "system", "content": "S"}]}, "turn 2: a system message may only come first"),
        ({"messages": [USER, "Antwort."]}, "turn 2: expected a JSON object, found string"),
        ({"messages": {"role": "user"}}, "'messages' must be a list of turns, found object"),
        ({"messages": []}, "'messages' holds no turns"),
        ({"conversations": [{"from": "human"}]}, "turn 1: missing 'value'"),
        ({"messages": [USER, ASSISTANT], "conversations": []}, "both 'messages' and 'conversations'; use one"),
        (
            {"messages": [USER, ASSISTANT], "output": "x"},
            "a record holds either 'messages' or instruction fields, not both",
        ),
    ],
)
def test_conversation_errors_name_the_record_and_the_turn(tmp_path, record, message):
    path = write_jsonl(tmp_path, {"messages": [USER, ASSISTANT]}, record)
    with pytest.raises(InstructionFileError) as raised:
        read_jsonl(path)
    assert str(raised.value) == f"{path}:2: {message}"


def test_a_later_turn_trains_its_answer_alone_after_the_earlier_turns_position_by_position(tokenizer):
    encoded = encode_examples(tokenizer, STYLE, [FIRST, SECOND], 512, "f.jsonl")
    batch = CompletionOnlyCollator(tokenizer.eos_token_id)(encoded.features)
    eos = tokenizer.eos_token_id
    history = f"{SYSTEM}\n{STYLE.format('Nenne einen Fluss.')}Der Rhein.{tokenizer.eos_token}"
    prompts = [
        tokenizer(f"{SYSTEM}\n{STYLE.format('Nenne einen Fluss.')}")["input_ids"],
        tokenizer(history + STYLE.format("Und noch einen?"))["input_ids"],
    ]
    answers = [
        tokenizer(answer, add_special_tokens=False)["input_ids"] + [eos] for answer in ("Der Rhein.", "Die Elbe.")
    ]
    width = batch["input_ids"].shape[1]
    for row in range(2):
        padding = width - len(prompts[row]) - len(answers[row])
        assert batch["input_ids"][row].tolist() == prompts[row] + answers[row] + [eos] * padding
        assert (
            batch["labels"][row].tolist()
            == [IGNORE_INDEX] * len(prompts[row]) + answers[row] + [IGNORE_INDEX] * padding
        )
    # The earlier answer and its EOS sit in the second prompt, unlabelled.
    assert prompts[1].count(eos) == 1


def test_sharegpt_and_messages_train_identical_ids_and_labels(tmp_path, tokenizer):
    messages = read_jsonl(write_jsonl(tmp_path, {"messages": MESSAGES}))
    sharegpt = read_jsonl(write_jsonl(tmp_path, {"conversations": SHAREGPT}))
    collate = CompletionOnlyCollator(tokenizer.eos_token_id)
    batches = [
        collate(encode_examples(tokenizer, STYLE, [r.example for r in records], 512, "f").features)
        for records in (messages, sharegpt)
    ]
    for key in ("input_ids", "labels", "attention_mask"):
        assert batches[0][key].tolist() == batches[1][key].tolist()


def test_the_written_chat_template_renders_the_tutorial_prompt_and_continues_the_conversation(tokenizer):
    chat = chat_format(tokenizer, STYLE)
    single = tokenizer.apply_chat_template(conversation_messages(Example("Hallo!", "", 1)), chat_template=chat.template,
                                           add_generation_prompt=True, tokenize=False)  # fmt: skip
    assert single == template_start(tokenizer) + STYLE.format("Hallo!")
    with_input = conversation_messages(Example("Übersetze.", "", 1, input="Haus"))
    assert chat.prompt_text(tokenizer, with_input).endswith(STYLE.format("Übersetze.", "Haus"))
    whole = chat.prompt_text(tokenizer, conversation_messages(SECOND))
    assert whole == template_start(tokenizer) + (
        f"{SYSTEM}\n{STYLE.format('Nenne einen Fluss.')}Der Rhein.{tokenizer.eos_token}{STYLE.format('Und noch einen?')}"
    )


def test_after_the_bos_the_first_word_is_tokenized_as_the_tokenizer_encodes_it(sentencepiece_tokenizer):
    """Llama-style tokenizers mark a text's first word with '▁' in one of two ways: Metaspace for
    the first piece of text only (which the BOS written as text would hide), or a normalizer that
    prefixes every piece (the legacy Llama conversion). The template writes the BOS so that each
    gives the ids it gives the prompt alone, as training before chat templates did."""
    legacy = copy.deepcopy(sentencepiece_tokenizer)
    legacy.backend_tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    legacy.backend_tokenizer.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    for tokenizer, start in ((sentencepiece_tokenizer, "<s> "), (legacy, "<s>")):
        chat = chat_format(tokenizer, STYLE)
        messages = conversation_messages(Example("Hallo!", "", 1))
        assert chat.prompt_text(tokenizer, messages) == start + STYLE.format("Hallo!")
        assert chat.prompt_ids(tokenizer, messages) == tokenizer(STYLE.format("Hallo!"))["input_ids"]
        assert tokenizer.convert_ids_to_tokens(chat.prompt_ids(tokenizer, messages))[:2] == ["<s>", "▁Es"]


CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture
def chatml_tokenizer(bpe_tokenizer, tmp_path):
    bpe_tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    return tokenizer


def test_a_base_models_chat_template_is_used_with_its_own_end_of_turn(chatml_tokenizer):
    im_end = chatml_tokenizer.convert_tokens_to_ids("<|im_end|>")
    chat = chat_format(chatml_tokenizer, STYLE)
    assert chat.template == CHATML and chat.end_of_turn == [im_end]
    (feature,) = encode_examples(chatml_tokenizer, STYLE, [FIRST], 512, "f").features
    prompt = chatml_tokenizer(
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nNenne einen Fluss.<|im_end|>\n<|im_start|>assistant\n",
        add_special_tokens=False,
    )["input_ids"]
    answer = chatml_tokenizer("Der Rhein.", add_special_tokens=False)["input_ids"] + [im_end]
    assert feature == {"input_ids": prompt + answer, "prompt_length": len(prompt)}
    assert chat.stop_ids(chatml_tokenizer) == [chatml_tokenizer.eos_token_id, im_end]
    # Asked for, the tutorial's template replaces it.
    assert chat_format(chatml_tokenizer, STYLE, use_saved=False).end_of_turn == [chatml_tokenizer.eos_token_id]


def test_a_chat_template_that_does_not_render_prompt_then_answer_is_refused(chatml_tokenizer):
    backwards = "{% for message in messages|reverse %}{{ message['content'] }}{% endfor %}"
    with pytest.raises(UserError) as raised:
        end_of_turn_ids(chatml_tokenizer, backwards)
    assert str(raised.value) == (
        "the base model's chat template does not render a conversation as its prompt followed by the answer; "
        "train with --tutorial-template to use the tutorial's"
    )
