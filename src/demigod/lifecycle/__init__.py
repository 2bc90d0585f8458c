"""The model lifecycle: converter toolkit, HF -> GGUF conversion, quantization, evaluation,
and the demo models trained offline through that pipeline (see docs/demo-models.md)."""
