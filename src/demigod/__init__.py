"""Phoenix DemiGod: an inference mesh for attention-free language models."""

__version__ = "0.1.0"
