"""Data: read an instruction file of any format into examples, wrap them in the prompt
template, turn them into token ids with answer-only labels, and form the batches."""
