"""The labelled prompt-injection set (JSONL)."""
