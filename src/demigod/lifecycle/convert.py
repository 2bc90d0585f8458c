"""Convert a Hugging Face checkpoint folder to GGUF with llama.cpp's converter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from demigod.lifecycle.errors import LifecycleError

# Converter output lines quoted in an error: enough for a traceback's cause.
_ERROR_TAIL_LINES = 25

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


class ConversionError(LifecycleError):
    """llama.cpp's converter failed; the message carries its last output lines."""


def convert_hf_to_gguf(
    hf_dir: Path, out_file: Path, toolkit: Path, outtype: str = "f16", vocab_only: bool = False
) -> Path:
    """Convert the checkpoint in `hf_dir` to the GGUF file `out_file`; return `out_file`.

    `vocab_only` writes just the tokenizer the model would carry (needs only config.json).

    Runs the toolkit's `convert_hf_to_gguf.py` in a subprocess of this interpreter (it
    imports torch and transformers, and finds its `conversion/` package and vocab files
    beside itself). The output is written to a temporary name and renamed, so `out_file`
    never exists half-written. Raises ValueError for a bad argument and ConversionError
    when the converter fails.
    """
    script = toolkit / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise ValueError(f"no convert_hf_to_gguf.py in toolkit {toolkit}")
    if not (hf_dir / "config.json").is_file():
        raise ValueError(f"{hf_dir} is not a Hugging Face checkpoint folder (no config.json)")
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {', '.join(OUTTYPES)}, not {outtype!r}")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    # Ends in .gguf: the converter treats other names as templates or folders.
    partial = out_file.with_name(f".{out_file.name}.{os.getpid()}.partial.gguf")
    command = [
        sys.executable,
        str(script),
        str(hf_dir),
        "--outfile",
        str(partial),
        "--outtype",
        outtype,
    ]
    if vocab_only:
        command.append("--vocab-only")
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not partial.is_file():
            output = (result.stdout + result.stderr).strip().splitlines()
            tail = "\n".join(output[-_ERROR_TAIL_LINES:])
            raise ConversionError(
                f"converting {hf_dir} to GGUF failed (exit {result.returncode}):\n{tail}"
            )
        partial.replace(out_file)
    finally:
        partial.unlink(missing_ok=True)
    return out_file
