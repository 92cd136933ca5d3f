"""Models: where a base model comes from (local, the Hub, its cache, or tiny-bloom), how a
model or adapter directory loads, and how a finished one is put in place whole."""
