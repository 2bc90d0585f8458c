"""Energy per token: a Mamba against a Transformer (llama architecture) of about the same
size, built the same way, served by the same `demigod serve`, at 512, 4K and 16K tokens of
context — where the SSM's constant-size state should pay off.

Run: .venv/bin/python bench/energy.py [--threads 1] [--workdir var/bench/energy]
     [--contexts 512 4096 16384] [--repeats 2] [--plot docs/img/energy-per-token.png]

Both models are random-init (what is measured is the cost of the architecture, not the
quality of the text) with one SentencePiece vocabulary trained on the standard library's
sources, converted with llama.cpp's converter and quantized to Q8_0. For each context
length and model, streamed completions of OUTPUT_TOKENS tokens (greedy, ignore_eos) are
timed as a client sees them, and the joules come from the server's own
`demigod_energy_joules_total` (RAPL where readable, else CPU-seconds x watts-per-core:
the table says which). One sequence at a time, state cache off: nothing is reused between
requests. Prints a table and one JSON line; plots J/token and decode tok/s if matplotlib is
installed. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from demigod.processes import ServerNotReadyError, free_port, wait_until_ready

OUTPUT_TOKENS = 128
VOCAB_SIZE = 8000
HIDDEN = 128
LAYERS = 4
START_TIMEOUT = 180.0
WORDS = [
    "state",
    "model",
    "token",
    "sequence",
    "memory",
    "attention",
    "window",
    "context",
    "recurrent",
    "layer",
]


def build_models(workdir: Path) -> dict[str, Path]:
    """The two GGUF files (built once, then reused), by architecture name."""
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MambaConfig, MambaForCausalLM

    from demigod.config import load_settings
    from demigod.lifecycle.convert import convert_hf_to_gguf
    from demigod.lifecycle.quantize import quantize_gguf
    from demigod.lifecycle.toolkit import ensure_toolkit

    models = {name: workdir / f"{name}.Q8_0.gguf" for name in ("mamba", "llama")}
    if all(path.is_file() for path in models.values()):
        return models
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "corpus.txt"
    sources = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:120]
    corpus.write_text("\n".join(path.read_text(errors="ignore") for path in sources))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(workdir / "sp"),
        vocab_size=VOCAB_SIZE,
        model_type="bpe",
        byte_fallback=True,
        minloglevel=2,
    )
    toolkit = ensure_toolkit(load_settings().data_dir)
    torch.manual_seed(0)
    networks = {
        "mamba": MambaForCausalLM(
            MambaConfig(vocab_size=VOCAB_SIZE, hidden_size=HIDDEN, num_hidden_layers=LAYERS)
        ),
        "llama": LlamaForCausalLM(
            LlamaConfig(
                vocab_size=VOCAB_SIZE,
                hidden_size=HIDDEN,
                # With this MLP width and tied embeddings the two models have the same
                # parameter count (1.48 M against 1.49 M): the architecture is the difference.
                intermediate_size=HIDDEN,
                tie_word_embeddings=True,
                num_hidden_layers=LAYERS,
                num_attention_heads=4,
                num_key_value_heads=4,
                max_position_embeddings=32768,
            )
        ),
    }
    for name, network in networks.items():
        hf_dir = workdir / f"{name}-hf"
        network.save_pretrained(hf_dir, safe_serialization=True)
        (hf_dir / "tokenizer.model").write_bytes((workdir / "sp.model").read_bytes())
        f16 = convert_hf_to_gguf(hf_dir, workdir / f"{name}.F16.gguf", toolkit)
        quantize_gguf(f16, models[name], "Q8_0")
        print(f"built {name}: {sum(p.numel() for p in network.parameters()):,} parameters")
    return models


def serve(
    models: dict[str, Path], workdir: Path, threads: int, n_ctx: int
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    config = workdir / "mesh.yaml"
    config.write_text(
        f"engine:\n  n_ctx: {n_ctx}\n  slots: 1\n  n_threads: {threads}\n"
        "  state_cache:\n    enabled: false\n"
        "observability:\n  deep_probe_interval_seconds: 0\n"
        # The model's joules only: no auth, screen or audit log on the request path.
        'security:\n  auth: "off"\nwaf:\n  enabled: false\naudit:\n  enabled: false\n'
    )
    command = [sys.executable, "-m", "demigod", "serve", "--port", str(port), "-c", str(config)]
    for name, path in models.items():
        command += ["--model", f"{name}={path}"]
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{url}/readyz", timeout=START_TIMEOUT, interval=0.5)
    except ServerNotReadyError as exc:
        raise RuntimeError(f"server {exc}: see {workdir / 'server.log'}") from exc
    return url, process


def counters(url: str, model: str) -> dict[str, float | str]:
    """The model's energy (summed over sources, and their names), and the sums of its
    time-to-first-token and time-per-output-token histograms, from the server's /metrics."""
    wanted = {
        "demigod_energy_joules_total": "joules",
        "demigod_time_to_first_token_seconds_sum": "ttft_s",
        "demigod_time_per_output_token_seconds_sum": "token_s",
    }
    found: dict[str, float | str] = dict.fromkeys(wanted.values(), 0.0)
    sources = set()
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name in wanted and sample.labels.get("model") == model:
                key = wanted[sample.name]
                found[key] = float(found[key]) + sample.value
                sources.update([sample.labels["source"]] if "source" in sample.labels else [])
    found["source"] = ",".join(sorted(sources))
    return found


def prompt_of(url: str, model: str, tokens: int, salt: int) -> str:
    """Text of about `tokens` tokens for `model`, different for each `salt`."""
    words = [WORDS[(salt + i) % len(WORDS)] for i in range(tokens)]
    text = f"{salt} " + " ".join(words)
    counted = len(
        httpx.post(f"{url}/tokenize", json={"model": model, "content": text}).json()["tokens"]
    )
    return f"{salt} " + " ".join(words[: max(1, int(len(words) * tokens / counted))])


def measure(url: str, model: str, context: int, salt: int) -> dict[str, float | str]:
    """One completion after a prompt of about `context` tokens, timed by the server itself
    (client-side stamps bunch up when tokens arrive faster than the network reads them)."""
    prompt = prompt_of(url, model, context, salt)
    before = counters(url, model)
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": OUTPUT_TOKENS,
        "temperature": 0,
        "ignore_eos": True,
    }
    httpx.post(f"{url}/v1/completions", json=body, timeout=600).raise_for_status()
    after = counters(url, model)
    spent = float(after["joules"]) - float(before["joules"])
    return {
        "ttft_s": float(after["ttft_s"]) - float(before["ttft_s"]),
        "decode_tok_s": 1 / (float(after["token_s"]) - float(before["token_s"])),
        "joules": spent,
        "j_per_token": spent / OUTPUT_TOKENS,
        "source": str(after["source"]),
    }


def plot(rows: list[dict[str, object]], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    figure, (energy, speed) = plt.subplots(1, 2, figsize=(11, 4))
    for model in ("mamba", "llama"):
        mine = [row for row in rows if row["model"] == model]
        contexts = [row["context"] for row in mine]
        energy.plot(contexts, [row["j_per_token"] for row in mine], marker="o", label=model)
        speed.plot(contexts, [row["decode_tok_s"] for row in mine], marker="o", label=model)
    for axis, title in ((energy, "joules per output token"), (speed, "decode tokens/s")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("context (prompt tokens)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    print(f"plot: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # One decode thread by default: llama.cpp's threads spin, and a second one on a busy
    # 2-core machine slows decoding by an order of magnitude.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench/energy"))
    parser.add_argument("--contexts", type=int, nargs="+", default=[512, 4096, 16384])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    models = build_models(args.workdir)
    url, process = serve(models, args.workdir, args.threads, max(args.contexts) + 1024)
    rows: list[dict[str, object]] = []
    try:
        for context in args.contexts:
            for model in models:
                runs = [measure(url, model, context, salt) for salt in range(args.repeats)]
                row: dict[str, object] = {"model": model, "context": context}
                for key in ("ttft_s", "decode_tok_s", "joules", "j_per_token"):
                    row[key] = statistics.median(float(run[key]) for run in runs)
                row["source"] = runs[-1]["source"]
                rows.append(row)
                print(
                    f"{model:6} ctx {context:6}: TTFT {row['ttft_s']:.2f}s, "
                    f"decode {row['decode_tok_s']:.1f} tok/s, {row['j_per_token']:.4f} J/token"
                )
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"\n{'model':6} {'context':>7} {'TTFT s':>9} {'decode tok/s':>12} {'J/token':>8} source")
    for row in rows:
        print(
            f"{row['model']:6} {row['context']:>7} {row['ttft_s']:>9.2f} "
            f"{row['decode_tok_s']:>12.1f} {row['j_per_token']:>8.4f} {row['source']}"
        )
    summary = {
        "bench": "energy",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "threads": args.threads,
        "output_tokens": OUTPUT_TOKENS,
        "rows": rows,
    }
    print(json.dumps(summary))
    if args.plot is not None:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
