"""The Answerer's faster path (linears prepacked, BLOOM's fused GELU, the prompt run once for
all beams, several prompts at once) gives the tokens transformers' generate gives on the
model as loaded."""

import pytest
import torch
from conftest import TRAINING_FILE
from transformers.models.bloom.modeling_bloom import BloomGelu

from llm_instruct.answering.generation import Answerer, GenerationSettings, until_stop
from llm_instruct.answering.requests import Request
from llm_instruct.data.chat_template import conversation_messages
from llm_instruct.data.prompt import load_style
from llm_instruct.models.modeldir import find_model, load_tokenizer_and_model

NEW_TOKENS = 24


def instructions() -> list[str]:
    return [line.rpartition("#")[0] for line in TRAINING_FILE.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("beams", [1, 5])
def test_the_answerer_gives_the_tokens_of_plain_generate(trained_model_dir, beams):
    tokenizer, model = load_tokenizer_and_model(find_model(str(trained_model_dir)), dtype=torch.float32)
    settings = GenerationSettings(num_beams=beams, max_new_tokens=NEW_TOKENS)
    answerer = Answerer(model.eval(), tokenizer, load_style(trained_model_dir), settings)
    _, plain_model = load_tokenizer_and_model(find_model(str(trained_model_dir)), dtype=torch.float32)
    requests = [Request(instruction) for instruction in instructions()]

    expected = []
    for request in requests:
        ids = torch.tensor([answerer.chat.prompt_ids(tokenizer, conversation_messages(request))])
        with torch.inference_mode():
            output = plain_model.eval().generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=beams, do_sample=False,
                max_new_tokens=NEW_TOKENS, eos_token_id=answerer.stop_ids, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        expected.append(until_stop(output[0, ids.shape[1] :].tolist(), answerer.stop_ids))

    alone = [answerer.answer(request) for request in requests]
    assert [answer.new_tokens for answer in alone] == [len(ids) for ids in expected]
    assert [answer.text for answer in alone] == [
        tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in expected
    ]
    assert [answer.text for answer in answerer.answer_many(requests)] == [answer.text for answer in alone]
    assert not any(isinstance(module, BloomGelu) for module in model.modules())
