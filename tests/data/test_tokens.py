import pytest

from llm_instruct.data.instructions import Example, InstructionFileError
from llm_instruct.data.prompt import PromptStyle
from llm_instruct.data.tokens import IGNORE_INDEX, CompletionOnlyCollator, encode_examples

STYLE = PromptStyle()
SHORT = Example("Nenne ein Tier.", "Ein Pferd ist ein Tier.", 1)
LONG = Example("Sage mir einen Zauberspruch zu drei Städten.", "Hokus Düsseldorf, Esoterikus Köln, Alohomora!", 2)


def ids(tokenizer, text, special):
    return tokenizer(text, add_special_tokens=special)["input_ids"]


@pytest.fixture(params=["bpe_tokenizer", "sentencepiece_tokenizer"])
def tokenizer(request):
    return request.getfixturevalue(request.param)


def test_labels_train_exactly_the_answer_and_its_eos(tokenizer):
    encoded = encode_examples(tokenizer, STYLE, [SHORT, LONG], max_length=512, path="f.txt")
    assert encoded.truncated == 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = CompletionOnlyCollator(pad)(encoded.features)

    width = batch["input_ids"].shape[1]
    for row, example in enumerate([SHORT, LONG]):
        prompt = ids(tokenizer, STYLE.format(example.instruction), special=True)
        answer = ids(tokenizer, example.answer, special=False) + [tokenizer.eos_token_id]
        padding = width - len(prompt) - len(answer)
        assert batch["input_ids"][row].tolist() == prompt + answer + [pad] * padding
        assert batch["attention_mask"][row].tolist() == [1] * (len(prompt) + len(answer)) + [0] * padding
        assert batch["labels"][row].tolist() == [IGNORE_INDEX] * len(prompt) + answer + [IGNORE_INDEX] * padding
        assert tokenizer.decode(answer, skip_special_tokens=True) == example.answer
    # Padded to the longest example of this batch, not to a fixed length.
    assert width == max(len(feature["input_ids"]) for feature in encoded.features)


def test_eos_is_trained_even_when_pad_equals_eos(bpe_tokenizer):
    eos = bpe_tokenizer.eos_token_id
    features = [
        {"input_ids": [10, 11, 12, 20, eos], "prompt_length": 3},
        {"input_ids": [10, 11, 20, 21, 22, 23, eos], "prompt_length": 2},
    ]
    labels = CompletionOnlyCollator(pad_token_id=eos)(features)["labels"].tolist()
    assert labels == [
        [IGNORE_INDEX] * 3 + [20, eos] + [IGNORE_INDEX] * 2,
        [IGNORE_INDEX] * 2 + [20, 21, 22, 23, eos],
    ]


def test_prompt_and_answer_are_tokenized_apart(sentencepiece_tokenizer):
    """Joined, the answer's first word loses its '▁' after the newline; generation never sees that."""
    tokenizer = sentencepiece_tokenizer
    prompt = STYLE.format("Hallo!")
    joined = ids(tokenizer, prompt + "Hallo, schön", special=True)
    apart = ids(tokenizer, prompt, special=True) + ids(tokenizer, "Hallo, schön", special=False)
    assert joined != apart
    feature = encode_examples(tokenizer, STYLE, [Example("Hallo!", "Hallo, schön", 1)], 512, "f").features
    assert feature[0]["input_ids"] == apart + [tokenizer.eos_token_id]


def test_newline_merged_into_the_prompt_end_does_not_move_the_boundary(bpe_tokenizer):
    """Byte-level BPE may merge ' \\n' into one token; the boundary still comes from the prompt's length."""
    prompt = ids(bpe_tokenizer, STYLE.format(SHORT.instruction), special=True)
    assert bpe_tokenizer.convert_ids_to_tokens(prompt)[-1] in ("ĠĊ", "Ċ")
    (feature,) = encode_examples(bpe_tokenizer, STYLE, [SHORT], 512, "f").features
    assert feature["prompt_length"] == len(prompt)


def test_over_long_prompts_keep_their_special_start_and_their_end(tokenizer):
    """Cut from the front of the text, after the BOS that Llama-style tokenizers put first."""
    prompt = ids(tokenizer, STYLE.format(SHORT.instruction), special=True)
    answer = ids(tokenizer, SHORT.answer, special=False) + [tokenizer.eos_token_id]
    max_length = len(answer) + 5
    encoded = encode_examples(tokenizer, STYLE, [SHORT], max_length, "f.txt")
    assert encoded.truncated == 1
    start = [tokenizer.bos_token_id] if prompt[0] == tokenizer.bos_token_id else []
    kept = start + prompt[len(prompt) - (5 - len(start)) :]
    assert encoded.features == [{"input_ids": kept + answer, "prompt_length": 5}]


def test_the_sentencepiece_style_prompt_starts_with_bos_and_keeps_it_when_cut(sentencepiece_tokenizer):
    (feature,) = encode_examples(sentencepiece_tokenizer, STYLE, [SHORT], 30, "f.txt").features
    assert feature["input_ids"][0] == sentencepiece_tokenizer.bos_token_id
    assert feature["input_ids"][1] != sentencepiece_tokenizer.bos_token_id


def test_an_example_with_input_uses_the_input_template(bpe_tokenizer):
    example = Example("Übersetze ins Englische.", "The house.", "record 1", input="Das Haus.")
    (feature,) = encode_examples(bpe_tokenizer, STYLE, [example], 512, "f.json").features
    prompt = STYLE.format(example.instruction, example.input)
    assert "Eingabe: Das Haus. Antwort: \n" in prompt
    assert feature["input_ids"][: feature["prompt_length"]] == ids(bpe_tokenizer, prompt, special=True)


def test_an_answer_that_does_not_fit_is_an_error_with_its_line(tokenizer):
    answer_length = len(ids(tokenizer, LONG.answer, special=False)) + 1
    with pytest.raises(InstructionFileError) as raised:
        encode_examples(tokenizer, STYLE, [LONG], answer_length, "f.txt")
    assert str(raised.value) == (
        f"f.txt:2: the answer is {answer_length} tokens with EOS, leaving no room for the prompt "
        f"within --max-length {answer_length}"
    )
