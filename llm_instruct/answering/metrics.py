"""How close an answer is to the expected one, beyond exact match: chrF (sacrebleu).

Exact match gives a held-out answer no credit for the right form with other words; chrF
(character n-gram F-score, 0-100) does, and it needs no tokenizer, so it suits German
compounds and short answers alike.
"""

from sacrebleu.metrics import CHRF

_CHRF = CHRF()


def sentence_chrf(answer: str, expected: str) -> float:
    return _CHRF.sentence_score(answer, [expected]).score


def corpus_chrf(answers: list[str], expected: list[str]) -> float:
    """Over all answers at once, as sacrebleu defines it (not the mean of the sentence scores)."""
    return _CHRF.corpus_score(answers, [expected]).score
