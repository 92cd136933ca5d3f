"""Answering: prompt a trained model exactly as it was trained and generate its answers,
one by one for a conversation or scored against expected answers (generate.py)."""
