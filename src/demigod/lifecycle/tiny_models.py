"""Tiny random-init checkpoints of every family in `demigod.lifecycle.architectures`.

For tests and demos without internet: each builder writes a Hugging Face folder (config,
safetensors weights and the tokenizer files the pinned llama.cpp converter wants) in
seconds. The tokenizers are made offline:

- Mamba: no tokenizer files; the converter embeds its builtin GPT-NeoX vocab (50280 ids).
- Mamba2, Jamba, Granite hybrid: a SentencePiece `tokenizer.model` trained here on Python's own
  documentation strings.
- Falcon-H1, Zamba2: GPT-2's byte-level BPE, rebuilt from the converter toolkit's
  `models/ggml-vocab-gpt-2.gguf` (the converter recognises its pre-tokenizer by hash).
- RWKV7: a small vocabulary in RWKV's "world" format (`rwkv_vocab_v20230424.txt`): the 256
  bytes, then a few common multi-byte pieces; id 261 is "\\n\\n", which the converter marks
  as end of turn.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Shared tiny shape: big enough that every converter's divisibility rules hold.
HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
SSM_HEAD_DIM = 16
SSM_STATE = 16
SENTENCEPIECE_VOCAB = 512
RWKV_HIDDEN = 128
RWKV_HEAD_DIM = 64
RWKV_VOCAB_FILE = "rwkv_vocab_v20230424.txt"
RWKV_EOT_ID = 261  # the converter's hard-wired end-of-turn id ("\n\n" in the world vocab)


def build_tiny(family: str, hf_dir: Path, toolkit: Path, seed: int = 0) -> Path:
    """Write a random-init `family` checkpoint to `hf_dir`; return `hf_dir`.

    `toolkit` is the converter toolkit (demigod.lifecycle.toolkit), whose vocab files
    some tokenizers are rebuilt from. Raises KeyError for a family without a builder.
    """
    builders: dict[str, Callable[[Path, Path], None]] = {
        "mamba": _mamba,
        "mamba2": _mamba2,
        "rwkv7": _rwkv7,
        "jamba": _jamba,
        "falcon-h1": _falcon_h1,
        "granite-hybrid": _granite_hybrid,
        "zamba2": _zamba2,
    }
    if family not in builders:
        raise KeyError(f"no tiny builder for {family!r}; have: {', '.join(builders)}")
    torch.manual_seed(seed)
    hf_dir.mkdir(parents=True, exist_ok=True)
    builders[family](hf_dir, toolkit)
    return hf_dir


def buildable_families() -> list[str]:
    """The families `build_tiny` knows, in the architecture table's order."""
    return ["mamba", "mamba2", "rwkv7", "jamba", "falcon-h1", "granite-hybrid", "zamba2"]


# -- builders ------------------------------------------------------------------------


def _mamba(hf_dir: Path, toolkit: Path) -> None:
    from demigod.lifecycle.train import random_init

    random_init(hf_dir, hidden_size=HIDDEN, num_layers=LAYERS)


def _mamba2(hf_dir: Path, toolkit: Path) -> None:
    from transformers import Mamba2Config, Mamba2ForCausalLM

    config = Mamba2Config(
        vocab_size=_sentencepiece(hf_dir),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        expand=2,
        head_dim=SSM_HEAD_DIM,
        num_heads=2 * HIDDEN // SSM_HEAD_DIM,
        n_groups=1,
        state_size=SSM_STATE,
        conv_kernel=4,
        tie_word_embeddings=False,
    )
    Mamba2ForCausalLM(config).save_pretrained(hf_dir)


def _jamba(hf_dir: Path, toolkit: Path) -> None:
    from transformers import JambaConfig, JambaForCausalLM

    vocab = _sentencepiece(hf_dir)
    config = JambaConfig(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        attn_layer_period=2,
        attn_layer_offset=1,  # layer 0 Mamba, layer 1 attention
        expert_layer_period=2,
        expert_layer_offset=1,
        num_experts=2,
        num_experts_per_tok=1,
        mamba_d_state=SSM_STATE,
        mamba_d_conv=4,
        mamba_expand=2,
        mamba_dt_rank=HIDDEN // 16,
        use_mamba_kernels=False,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        **_special_ids(),
    )
    JambaForCausalLM(config).save_pretrained(hf_dir)


def _granite_hybrid(hf_dir: Path, toolkit: Path) -> None:
    from transformers import GraniteMoeHybridConfig, GraniteMoeHybridForCausalLM

    vocab = _sentencepiece(hf_dir)
    config = GraniteMoeHybridConfig(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        shared_intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        layer_types=["mamba", "attention"],
        num_local_experts=0,  # dense: the shared MLP only, as granite-4.0-h-micro
        num_experts_per_tok=0,
        mamba_n_heads=2 * HIDDEN // SSM_HEAD_DIM,
        mamba_d_head=SSM_HEAD_DIM,
        mamba_n_groups=1,
        mamba_d_state=SSM_STATE,
        mamba_d_conv=4,
        mamba_expand=2,
        position_embedding_type="nope",
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        **_special_ids(),
    )
    GraniteMoeHybridForCausalLM(config).save_pretrained(hf_dir)


def _falcon_h1(hf_dir: Path, toolkit: Path) -> None:
    from transformers import FalconH1Config, FalconH1ForCausalLM

    tokenizer = _gpt2_tokenizer(hf_dir, toolkit)
    config = FalconH1Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HIDDEN // HEADS,
        mamba_d_ssm=2 * HIDDEN,
        mamba_n_heads=2 * HIDDEN // SSM_HEAD_DIM,
        mamba_d_head=SSM_HEAD_DIM,
        mamba_n_groups=1,
        mamba_d_state=SSM_STATE,
        mamba_d_conv=4,
        mamba_expand=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,  # as Falcon-H1-0.5B; halves the 50K-row weights
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    FalconH1ForCausalLM(config).save_pretrained(hf_dir)


def _zamba2(hf_dir: Path, toolkit: Path) -> None:
    from transformers import Zamba2Config, Zamba2ForCausalLM

    tokenizer = _gpt2_tokenizer(hf_dir, toolkit)
    config = Zamba2Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        layers_block_type=["mamba", "hybrid"],
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        attention_head_dim=2 * HIDDEN // HEADS,  # Zamba2's shared block sees [h; embeddings]
        mamba_d_state=SSM_STATE,
        mamba_d_conv=4,
        mamba_expand=2,
        mamba_headdim=SSM_HEAD_DIM,
        mamba_ngroups=1,
        n_mamba_heads=2 * HIDDEN // SSM_HEAD_DIM,
        num_mem_blocks=1,
        use_shared_attention_adapter=False,
        use_mem_rope=False,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    Zamba2ForCausalLM(config).save_pretrained(hf_dir)


def _rwkv7(hf_dir: Path, toolkit: Path) -> None:
    from safetensors.torch import save_file

    vocab = _rwkv_world_vocab(hf_dir)
    head = RWKV_HEAD_DIM
    # Low-rank sizes as the converter's defaults would compute them, rounded to 32.
    ranks = {"decay": 32, "a": 32, "v": 32, "gate": 64}
    config = {
        "architectures": ["RWKV7ForCausalLM"],
        "model_type": "rwkv7",
        "vocab_size": vocab,
        "hidden_size": RWKV_HIDDEN,
        "intermediate_size": 4 * RWKV_HIDDEN,
        "num_hidden_layers": LAYERS,
        "head_dim": head,
        "norm_eps": 1e-5,
        "decay_low_rank_dim": ranks["decay"],
        "a_low_rank_dim": ranks["a"],
        "v_low_rank_dim": ranks["v"],
        "gate_low_rank_dim": ranks["gate"],
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    (hf_dir / "config.json").write_text(json.dumps(config, indent=2))
    save_file(_rwkv7_weights(vocab, ranks), str(hf_dir / "model.safetensors"))


def _rwkv7_weights(vocab: int, ranks: dict[str, int]) -> dict[str, torch.Tensor]:
    """fla-hub's RWKV7ForCausalLM tensor names and shapes, random values."""
    h, f = RWKV_HIDDEN, 4 * RWKV_HIDDEN
    n_heads = h // RWKV_HEAD_DIM

    def rand(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return (torch.randn(*shape) * scale).contiguous()

    weights = {
        "model.embeddings.weight": rand(vocab, h),
        "model.norm.weight": torch.ones(h),
        "model.norm.bias": torch.zeros(h),
        "lm_head.weight": rand(vocab, h),
    }
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        if i == 0:
            weights[f"{p}.pre_norm.weight"] = torch.ones(h)
            weights[f"{p}.pre_norm.bias"] = torch.zeros(h)
        for norm in ("attn_norm", "ffn_norm"):
            weights[f"{p}.{norm}.weight"] = torch.ones(h)
            weights[f"{p}.{norm}.bias"] = torch.zeros(h)
        a = f"{p}.attn"
        for name in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
            weights[f"{a}.{name}"] = rand(1, 1, h)
        weights[f"{a}.k_k"] = rand(h)
        weights[f"{a}.k_a"] = rand(h)
        weights[f"{a}.r_k"] = rand(n_heads, RWKV_HEAD_DIM)
        for proj in ("r_proj", "k_proj", "v_proj", "o_proj"):
            weights[f"{a}.{proj}.weight"] = rand(h, h)
        for lora, rank in (("w", ranks["decay"]), ("a", ranks["a"]), ("g", ranks["gate"])):
            weights[f"{a}.{lora}_lora.lora.0.weight"] = rand(rank, h)
            weights[f"{a}.{lora}_lora.lora.2.weight"] = rand(h, rank)
            if lora != "g":
                weights[f"{a}.{lora}_lora.lora.2.bias"] = rand(h)
        if i > 0:
            weights[f"{a}.v_lora.lora.0.weight"] = rand(ranks["v"], h)
            weights[f"{a}.v_lora.lora.2.weight"] = rand(h, ranks["v"])
            weights[f"{a}.v_lora.lora.2.bias"] = rand(h)
        weights[f"{a}.g_norm.weight"] = torch.ones(h)
        weights[f"{a}.g_norm.bias"] = torch.zeros(h)
        m = f"{p}.ffn"
        weights[f"{m}.x_k"] = rand(h)
        weights[f"{m}.key.weight"] = rand(f, h)
        weights[f"{m}.value.weight"] = rand(h, f)
    return weights


# -- tokenizers ----------------------------------------------------------------------


def _special_ids() -> dict[str, int]:
    # The SentencePiece model below: <unk>=0, <s>=1, </s>=2.
    return {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


def _sentencepiece(hf_dir: Path) -> int:
    """Train a small BPE SentencePiece model on Python's docstrings into
    `hf_dir/tokenizer.model` (all the converter reads); return its vocabulary size."""
    import sentencepiece as spm

    from demigod.lifecycle.corpora import documentation_topics

    text = "\n".join(documentation_topics())[:400_000]
    lines = [line for line in text.splitlines() if line.strip()]
    prefix = hf_dir / "tokenizer"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(prefix),
        vocab_size=SENTENCEPIECE_VOCAB,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    prefix.with_suffix(".vocab").unlink(missing_ok=True)
    return SENTENCEPIECE_VOCAB


def _gpt2_tokenizer(hf_dir: Path, toolkit: Path) -> Any:
    """GPT-2's tokenizer rebuilt from the toolkit's vocab-only GGUF, saved into `hf_dir`."""
    from transformers import GPT2TokenizerFast

    reader = _gguf_reader(toolkit / "models" / "ggml-vocab-gpt-2.gguf")
    tokens = _gguf_strings(reader, "tokenizer.ggml.tokens")
    merges = _gguf_strings(reader, "tokenizer.ggml.merges")
    scratch = hf_dir / ".gpt2-source"
    scratch.mkdir(exist_ok=True)
    vocab_file, merges_file = scratch / "vocab.json", scratch / "merges.txt"
    vocab_file.write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = GPT2TokenizerFast(vocab_file=str(vocab_file), merges_file=str(merges_file))
    tokenizer.save_pretrained(hf_dir)
    for path in scratch.iterdir():
        path.unlink()
    scratch.rmdir()
    return tokenizer


def _rwkv_world_vocab(hf_dir: Path) -> int:
    """Write a small RWKV "world" vocabulary; return the model's vocab size.

    Format, one token a line: `<id> <python literal of str or bytes> <byte length>`.
    """
    pieces: list[bytes] = [bytes([b]) for b in range(256)]  # ids 1..256
    common = [
        b"\r\n",
        b"  ",
        b"   ",
        b"    ",
        b"\n\n",
        b"the",
        b" the",
        b" a",
        b"ing",
        b"er",
        b"on",
    ]
    common += [b" " + word for word in (b"of", b"to", b"and", b"in", b"is", b"it", b"that")]
    pieces.extend(common)
    if pieces[RWKV_EOT_ID - 1] != b"\n\n":
        raise AssertionError("the world vocab's end-of-turn id must be \\n\\n")
    lines = []
    for index, piece in enumerate(pieces, start=1):
        try:
            literal = repr(piece.decode("utf-8"))
        except UnicodeDecodeError:
            literal = repr(piece)
        lines.append(f"{index} {literal} {len(piece)}")
    (hf_dir / RWKV_VOCAB_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 320  # token 0 (<s>) + pieces, padded to a multiple of 64


def _gguf_reader(path: Path) -> Any:
    gguf_py = str(path.parent.parent / "gguf-py")
    if gguf_py not in sys.path:
        sys.path.insert(0, gguf_py)
    import gguf  # type: ignore[import-not-found]  # the toolkit's own gguf-py

    return gguf.GGUFReader(str(path))


def _gguf_strings(reader: Any, key: str) -> list[str]:
    field = reader.fields[key]
    return [bytes(field.parts[index]).decode("utf-8") for index in field.data]
