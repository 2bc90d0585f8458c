"""Energy per token, decode and prefill apart: a Mamba against a Transformer (llama
architecture) of about the same size, built the same way, served by the same `demigod
serve`, at 512, 4K and 16K tokens of context, where the SSM's constant-size state should
pay off; the Transformer's decode speed cross-checked with llama-bench.

Run: .venv/bin/python bench/energy.py [--threads 1] [--workdir var/bench/energy]
     [--contexts 512 4096 16384] [--repeats 3] [--no-llama-bench]
     [--record src/demigod/reports/energy_comparison.json] [--plot docs/img/energy-per-token.png]

Both models are random-init (what is measured is the cost of the architecture, not the
quality of the text) with one SentencePiece vocabulary trained on the standard library's
sources, converted with llama.cpp's converter and quantized to Q8_0. One sequence at a
time, state cache off: nothing is reused between requests. For each repeat and context
length the two models are measured back to back (their order alternating), so a slow
spell on a shared machine falls on both; each measurement is two greedy completions of
fresh prompts of that length:
- prefill: 1 output token. Its joules over the prompt's tokens: J per prompt token; its
  time to first token over the prompt's tokens: prefill tokens/s.
- decode: OUTPUT_TOKENS output tokens (ignore_eos). The joules beyond the prefill
  completion's, over the OUTPUT_TOKENS - 1 extra tokens: J per decoded token; decode
  tokens/s from the server's own time-per-output-token histogram. Also that completion's
  whole joules over its output tokens (prompt included): J per output token of a request.
Joules come from the server's `demigod_energy_joules_total`: RAPL where readable, else the
estimate, this process's CPU-seconds x observability.watts_per_core (10 W). The estimate
counts CPU time, not power: a ratio of two estimates is a ratio of CPU-seconds.

Cross-check: llama-bench, built from the llama.cpp the engine runs (bench/engine_setup.py),
decodes OUTPUT_TOKENS tokens after the same depth on the same files, flash attention off
and on, right after each pair of server measurements. Medians over repeats; a ratio is
the median of the per-repeat ratios. Prints a table and one JSON line; --record writes
that JSON for `demigod report one-pager`. Never run by the test suite.
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

from demigod.config import ObservabilityConfig
from demigod.processes import ServerNotReadyError, free_port, wait_until_ready

sys.path.insert(0, str(Path(__file__).parent))
from engine_setup import build_llama_tool, sdist_tarball

# Enough decoded tokens that their joules stand out of the prefill's noise: at 16K tokens
# of context a Mamba's prompt costs ~20 J of estimate, scattering ~2 % between requests,
# and 128 of its tokens cost about as much as that scatter (one repeat came out negative).
OUTPUT_TOKENS = 512
VOCAB_SIZE = 8000
HIDDEN = 128
LAYERS = 4
START_TIMEOUT = 180.0
MODELS = ("mamba", "llama")  # the SSM first: ratios are llama over mamba
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


def prompt_of(url: str, model: str, tokens: int, salt: int) -> tuple[str, int]:
    """Text of about `tokens` tokens for `model`, different for each `salt`, and its
    length in the model's tokens."""
    words = [WORDS[(salt + i) % len(WORDS)] for i in range(tokens)]

    def counted(text: str) -> int:
        reply = httpx.post(f"{url}/tokenize", json={"model": model, "content": text})
        return len(reply.json()["tokens"])

    scaled = f"{salt} " + " ".join(
        words[: max(1, int(len(words) * tokens / counted(" ".join(words))))]
    )
    return scaled, counted(scaled)


def completion(url: str, model: str, prompt: str, max_tokens: int) -> dict[str, float | str]:
    """One greedy completion, and what it changed in the model's counters."""
    before = counters(url, model)
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    httpx.post(f"{url}/v1/completions", json=body, timeout=900).raise_for_status()
    after = counters(url, model)
    return {
        "joules": float(after["joules"]) - float(before["joules"]),
        "ttft_s": float(after["ttft_s"]) - float(before["ttft_s"]),
        "token_s": float(after["token_s"]) - float(before["token_s"]),
        "source": str(after["source"]),
    }


def measure(url: str, model: str, context: int, salt: int) -> dict[str, float | str]:
    """Prefill and decode of `model` after about `context` tokens (see the docstring)."""
    prompt, prompt_tokens = prompt_of(url, model, context, 2 * salt)
    prefill = completion(url, model, prompt, 1)
    prompt, _ = prompt_of(url, model, context, 2 * salt + 1)
    full = completion(url, model, prompt, OUTPUT_TOKENS)
    decode_joules = float(full["joules"]) - float(prefill["joules"])
    return {
        "prompt_tokens": prompt_tokens,
        "ttft_s": float(prefill["ttft_s"]),
        "prefill_tok_s": prompt_tokens / float(prefill["ttft_s"]),
        "prefill_j_per_token": float(prefill["joules"]) / prompt_tokens,
        "decode_tok_s": 1 / float(full["token_s"]),
        "decode_j_per_token": decode_joules / (OUTPUT_TOKENS - 1),
        # the whole request over its output, prompt included (how docs/operations.md
        # counted it before decode and prefill were apart)
        "request_j_per_output_token": float(full["joules"]) / OUTPUT_TOKENS,
        "source": str(full["source"]),
    }


def llama_bench(binary: Path, model: Path, depth: int, threads: int) -> dict[str, float]:
    """llama-bench's decode tokens/s for OUTPUT_TOKENS tokens after `depth` tokens of
    context, flash attention off ("fa0") and on ("fa1")."""
    result = subprocess.run(
        [
            str(binary),
            *("-m", str(model), "-p", "0", "-n", str(OUTPUT_TOKENS), "-d", str(depth)),
            *("-t", str(threads), "-r", "1", "-fa", "0,1", "-o", "json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        f"fa{int(run['flash_attn'])}": float(run["avg_ts"]) for run in json.loads(result.stdout)
    }


def median_ratio(runs: list[dict[str, dict[str, float | str]]], key: str, top: str) -> float:
    """The median over repeats of `top`'s `key` over the other model's."""
    bottom = next(model for model in MODELS if model != top)
    return statistics.median(float(run[top][key]) / float(run[bottom][key]) for run in runs)


def machine() -> dict[str, object]:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "processor": name, "kernel": platform.release()}


def plot(rows: list[dict[str, object]], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    figure, (energy, speed) = plt.subplots(1, 2, figsize=(11, 4))
    for model in MODELS:
        mine = [row for row in rows if row["model"] == model]
        contexts = [row["context"] for row in mine]
        energy.plot(
            contexts,
            [row["decode_j_per_token"] for row in mine],
            marker="o",
            label=f"{model} decode",
        )
        energy.plot(
            contexts,
            [row["prefill_j_per_token"] for row in mine],
            marker="x",
            linestyle="--",
            label=f"{model} prefill (per prompt token)",
        )
        speed.plot(
            contexts,
            [row["decode_tok_s"] for row in mine],
            marker="o",
            label=f"{model} (demigod serve)",
        )
        bench = [row.get("llama_bench_decode_tok_s") for row in mine]
        if all(bench):
            speed.plot(
                contexts,
                [b["fa0"] for b in bench],
                marker="^",
                linestyle=":",
                label=f"{model} (llama-bench, fa off)",
            )
    for axis, title in ((energy, "joules per token"), (speed, "decode tokens/s")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("context (prompt tokens)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-llama-bench", dest="llama_bench", action="store_false")
    parser.add_argument("--record", type=Path, default=None, help="write the JSON line here")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    models = build_models(args.workdir)
    bench_binary = None
    if args.llama_bench:
        tools = args.workdir.parent
        bench_binary = build_llama_tool(tools, sdist_tarball(tools, None), "llama-bench")
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    url, process = serve(models, args.workdir, args.threads, max(args.contexts) + 1024)
    # runs[context]: one {model: measurement} per repeat
    runs: dict[int, list[dict[str, dict[str, float | str]]]] = {c: [] for c in args.contexts}
    bench: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        for repeat in range(args.repeats):
            for context in args.contexts:
                order = MODELS if repeat % 2 == 0 else MODELS[::-1]
                pair = {model: measure(url, model, context, repeat) for model in order}
                runs[context].append(pair)
                for model in order:
                    print(
                        f"repeat {repeat} {model:6} ctx {context:6}: "
                        f"prefill {pair[model]['prefill_tok_s']:.0f} tok/s "
                        f"{pair[model]['prefill_j_per_token']:.5f} J/token, decode "
                        f"{pair[model]['decode_tok_s']:.1f} tok/s "
                        f"{pair[model]['decode_j_per_token']:.5f} J/token",
                        flush=True,
                    )
                    if bench_binary is not None:
                        found = llama_bench(bench_binary, models[model], context, args.threads)
                        bench.setdefault((model, context), []).append(found)
                        print(f"  llama-bench {model} depth {context}: {found}", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    rows: list[dict[str, object]] = []
    ratios: list[dict[str, object]] = []
    for context, measured in runs.items():
        for model in MODELS:
            row: dict[str, object] = {"model": model, "context": context}
            for key in (
                "prompt_tokens",
                "ttft_s",
                "prefill_tok_s",
                "prefill_j_per_token",
                "decode_tok_s",
                "decode_j_per_token",
                "request_j_per_output_token",
            ):
                row[key] = statistics.median(float(run[model][key]) for run in measured)
            row["source"] = measured[-1][model]["source"]
            if (model, context) in bench:
                row["llama_bench_decode_tok_s"] = {
                    fa: statistics.median(found[fa] for found in bench[model, context])
                    for fa in bench[model, context][0]
                }
            rows.append(row)
        ratios.append(
            {
                "context": context,
                # Transformer over Mamba: how many times more the Transformer spends
                "decode_j_per_token": median_ratio(measured, "decode_j_per_token", "llama"),
                "prefill_j_per_token": median_ratio(measured, "prefill_j_per_token", "llama"),
                "request_j_per_output_token": median_ratio(
                    measured, "request_j_per_output_token", "llama"
                ),
                # Mamba over Transformer: how many times faster the Mamba is
                "decode_tok_s": median_ratio(measured, "decode_tok_s", "mamba"),
                "prefill_tok_s": median_ratio(measured, "prefill_tok_s", "mamba"),
            }
        )
    print(
        f"\n{'model':6} {'context':>7} {'prefill tok/s':>13} {'J/prompt tok':>12} "
        f"{'decode tok/s':>12} {'llama-bench fa0/fa1':>20} {'J/decoded tok':>13} source"
    )
    for row in rows:
        found = row.get("llama_bench_decode_tok_s") or {}
        cross = "/".join(f"{found[fa]:.1f}" for fa in sorted(found)) or "-"
        print(
            f"{row['model']:6} {row['context']:>7} {row['prefill_tok_s']:>13.0f} "
            f"{row['prefill_j_per_token']:>12.6f} {row['decode_tok_s']:>12.1f} {cross:>20} "
            f"{row['decode_j_per_token']:>13.6f} {row['source']}"
        )
    print(
        f"\n{'context':>7} {'decode J x':>10} {'decode speed x':>14} {'prefill J x':>11} "
        f"{'request J x':>11}"
    )
    for ratio in ratios:
        print(
            f"{ratio['context']:>7} {ratio['decode_j_per_token']:>10.1f} "
            f"{ratio['decode_tok_s']:>14.1f} {ratio['prefill_j_per_token']:>11.2f} "
            f"{ratio['request_j_per_output_token']:>11.2f}"
        )
    summary = {
        "bench": "energy",
        "date": started.isoformat(timespec="seconds"),
        "machine": {**machine(), "load_before": load_before, "load_after": os.getloadavg()},
        "threads": args.threads,
        "output_tokens": OUTPUT_TOKENS,
        "repeats": args.repeats,
        # the estimate's multiplier (used only where a row's source is "estimate")
        "watts_per_core": ObservabilityConfig().watts_per_core,
        "models": {
            "mamba": f"Mamba, {LAYERS} layers, width {HIDDEN}, vocabulary {VOCAB_SIZE}, Q8_0",
            "llama": f"Transformer (llama), {LAYERS} layers, width {HIDDEN}, 4 heads, "
            f"vocabulary {VOCAB_SIZE}, Q8_0",
        },
        "rows": rows,
        "ratios": ratios,
    }
    line = json.dumps(summary)
    print(line)
    if args.record is not None:
        args.record.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"recorded: {args.record}")
    if args.plot is not None:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
