"""Tokenize training text with llama.cpp's own tokenizer, as the served model will.

The demo models carry the GPT-NeoX vocabulary that llama.cpp's converter embeds when a
Mamba checkpoint has no tokenizer files. The converter also sets the pre-tokenizer, which
the bare `models/ggml-vocab-gpt-neox.gguf` lacks (tokenizing with that file splits
"x + 1" differently), so the training tokenizer is the converter's own vocab-only output.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from demigod.lifecycle.corpora import DOCUMENT_SEPARATOR


def served_vocab(toolkit: Path, out_dir: Path) -> Path:
    """Write the tokenizer llama.cpp's converter embeds in a tokenizer-less Mamba checkpoint
    (a vocab-only GGUF) to `out_dir/vocab.gguf`; return its path.

    Raises as `convert_hf_to_gguf` does.
    """
    from demigod.lifecycle.convert import convert_hf_to_gguf
    from demigod.lifecycle.recipe import TrainConfig
    from demigod.lifecycle.train import mamba_config

    config_dir = out_dir / "vocab-hf"
    config_dir.mkdir(parents=True, exist_ok=True)
    # Only the vocabulary size and the missing tokenizer files matter; the shape does not.
    config = mamba_config(TrainConfig(hidden_size=64, num_layers=1))
    config.architectures = ["MambaForCausalLM"]  # save_pretrained would add it; we save no model
    config.to_json_file(config_dir / "config.json")
    return convert_hf_to_gguf(config_dir, out_dir / "vocab.gguf", toolkit, vocab_only=True)


class VocabTokenizer:
    """A vocab-only llama.cpp model used as a tokenizer."""

    def __init__(self, vocab_file: Path) -> None:
        """Load `vocab_file` (a GGUF with a vocabulary). Raises ValueError if it cannot."""
        import llama_cpp

        if not vocab_file.is_file():
            raise ValueError(f"vocab file not found: {vocab_file}")
        self._vocab = llama_cpp.Llama(model_path=str(vocab_file), vocab_only=True, verbose=False)
        separator = self.encode(DOCUMENT_SEPARATOR)
        if len(separator) != 1:
            raise ValueError(f"{vocab_file} has no single {DOCUMENT_SEPARATOR!r} token")
        self.separator_id = separator[0]

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, special tokens (the document separator) recognised."""
        return list(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` (invalid UTF-8 sequences replaced)."""
        return self._vocab.detokenize(list(ids)).decode("utf-8", errors="replace")

    def encode_documents(self, documents: Iterable[str]) -> NDArray[np.int32]:
        """One token stream: each document's tokens followed by the separator token.

        Documents are tokenized one at a time: llama.cpp's tokenizer slows down sharply on
        multi-megabyte strings.
        """
        stream: list[int] = []
        for document in documents:
            stream.extend(self._vocab.tokenize(document.encode("utf-8"), add_bos=False))
            stream.append(self.separator_id)
        return np.asarray(stream, dtype=np.int32)
