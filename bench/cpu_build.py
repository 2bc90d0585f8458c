"""llama.cpp built for this CPU (`GGML_NATIVE=ON`, what `pip install` compiles by default)
against the portable x86-64-v3 build of the worker images (`GGML_NATIVE=OFF`, AVX2/FMA/
F16C/BMI2, no AVX-512): decode and prefill speed on the same model file, paired.

Run: .venv/bin/python bench/cpu_build.py --portable-wheel WHEEL [--rounds 7]

The native build is this venv's llama-cpp-python; the portable one is WHEEL (e.g. the one
`containers/llama-wheel` caches under ~/.cache/demigod/wheels/), installed into a side venv
under --workdir that sees this venv's other packages. The model is bench/engine_setup.py's
random-init 768x24 Mamba (Q4_0). Each round runs both builds back to back, in alternating
order, each in a fresh process: decode = tokens per second over --tokens single-token
steps after a short prompt; prefill = prompt tokens per second for --prompt tokens in one
batch. Ratios are taken within a round, then the median over rounds (the machine is
shared). Prints a table and one JSON line; never run by the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

# One measurement in a fresh interpreter: argv = model, threads, prompt tokens, decode tokens.
MEASURE = r"""
import json, sys, time
import llama_cpp
model, threads, prompt, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(model, n_ctx=prompt + steps + 8, n_batch=prompt, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
tokens = [(7 * i + 11) % 50000 + 100 for i in range(prompt)]
started = time.perf_counter(); llm.eval(tokens); prefill = time.perf_counter() - started
llm.reset(); llm.eval(tokens[:8])
token = tokens[8]
started = time.perf_counter()
for _ in range(steps):
    llm.eval([token]); token = (token * 31 + 7) % 50000 + 100
decode = time.perf_counter() - started
system = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"prefill_tps": prompt / prefill, "decode_tps": steps / decode,
                  "system": system}))
"""


def portable_python(workdir: Path, wheel: Path) -> Path:
    """A venv whose llama-cpp-python is `wheel`, importing this venv's other packages."""
    from engine_setup import side_venv  # bench/ is on sys.path

    python = workdir / f"portable-{wheel.stem}" / "bin" / "python"
    if python.is_file():
        return python
    side_venv(python.parents[1])
    # --ignore-installed: ours is visible through the .pth file and would satisfy pip.
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel)],
        check=True,
    )
    return python


def measure(python: Path, model: Path, threads: int, prompt: int, tokens: int) -> dict:
    done = subprocess.run(
        [str(python), "-c", MEASURE, str(model), str(threads), str(prompt), str(tokens)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portable-wheel", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--model", type=Path, default=None, help="GGUF [engine_setup's]")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=256, help="prefill tokens")
    parser.add_argument("--tokens", type=int, default=128, help="decode steps")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        from engine_setup import build_model, sdist_tarball  # bench/ is on sys.path

        args.model = build_model(args.workdir, sdist_tarball(args.workdir, None))
    builds = {
        "native": Path(sys.executable),
        "portable": portable_python(args.workdir, args.portable_wheel),
    }
    rounds = []
    loads = []
    for index in range(args.rounds):
        order = list(builds) if index % 2 == 0 else list(reversed(builds))
        result = {
            name: measure(builds[name], args.model, args.threads, args.prompt, args.tokens)
            for name in order
        }
        loads.append(os.getloadavg()[0])
        rounds.append(result)
        print(
            f"round {index + 1}: decode native {result['native']['decode_tps']:.1f} "
            f"portable {result['portable']['decode_tps']:.1f} tok/s; prefill native "
            f"{result['native']['prefill_tps']:.0f} portable "
            f"{result['portable']['prefill_tps']:.0f} tok/s (load {loads[-1]:.2f})",
            flush=True,
        )

    def median(build: str, key: str) -> float:
        return statistics.median(r[build][key] for r in rounds)

    def ratio(key: str) -> float:
        return statistics.median(r["native"][key] / r["portable"][key] for r in rounds)

    rows = {
        key: {
            "native": round(median("native", key), 1),
            "portable": round(median("portable", key), 1),
            "native_over_portable": round(ratio(key), 3),
        }
        for key in ("decode_tps", "prefill_tps")
    }
    print(f"{'tok/s (median)':16} {'native':>9} {'portable':>9} {'native/portable':>16}")
    for key, row in rows.items():
        print(f"{key:16} {row['native']:>9} {row['portable']:>9} {row['native_over_portable']:>16}")
    systems = {name: rounds[0][name]["system"] for name in builds}
    for name, system in systems.items():
        print(f"{name}: {system}")
    # The two must be different builds (a side venv can silently import ours).
    assert systems["native"] != systems["portable"], "both runs loaded the same llama.cpp"
    print(json.dumps({
        "bench": "cpu_build", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.processor()}",
        "model": str(args.model), "threads": args.threads, "rounds": args.rounds,
        "prompt": args.prompt, "tokens": args.tokens,
        "load_average_median": round(statistics.median(loads), 2), "rows": rows,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
