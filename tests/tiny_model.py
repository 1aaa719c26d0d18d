"""A tiny random Llama with the real SmolLM2 tokenizer: fast to train and to serve, for tests only."""

from __future__ import annotations

from pathlib import Path

from app.runtime.atomic import building


def build_tiny_llama(dest: Path, tokenizer_dir: Path, seed: int = 0, hidden: int = 128, layers: int = 2) -> Path:
    """Head size 64 (hidden 128, 2 heads) is one the CPU attention kernels support."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    with building(dest, replace=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return dest
