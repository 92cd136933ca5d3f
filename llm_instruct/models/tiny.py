"""tiny-bloom: a small BLOOM built from nothing, for offline demos and tests.

Its tokenizer is a byte-level BPE (as BLOOM's and GPT-2's) trained on the
instruction file itself. The model is saved and then loaded with
from_pretrained, exactly the code path of a hub model.

torch, tokenizers and transformers load inside the functions: the command line reads
TINY_MODEL_NAME before its checks, which must not wait seconds for those libraries.
"""

from pathlib import Path

# The --model-name that builds this model instead of loading one.
TINY_MODEL_NAME = "tiny-bloom"
SPECIAL_TOKENS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}


def train_byte_level_tokenizer(texts: list[str], vocab_size: int = 1000):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte stays encodable
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS)


def build_tiny_bloom(texts: list[str], directory, *, seed: int, hidden_size: int = 128, layers: int = 4):
    """Write a randomly initialised BLOOM and its tokenizer to directory."""
    import torch
    from transformers import BloomConfig, BloomForCausalLM

    tokenizer = train_byte_level_tokenizer(texts)
    config = BloomConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        n_layer=layers,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    BloomForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
