"""A tiny Llama GGUF written with the ``gguf`` package (no download): 3 special + 256 byte-level
tokens + 2 merges (GPT-2 style BPE), a ChatML chat template, EOS ``<|im_end|>`` (id 2), 2 layers of
width 32, one tensor per layer Q8_0-quantized. Used by the GGUF import and chat-prompting tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
HIDDEN, HEADS, KV_HEADS, LAYERS, FFN = 32, 4, 2, 2, 64


def _byte_level_alphabet() -> list[str]:
    """GPT-2's 256 byte-level symbols (every byte has a printable stand-in)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, n = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return [chr(c) for c in chars]


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """A Llama GGUF: 3 special + 256 byte tokens + 2 merges, 2 layers of width 32 (~25 KB)."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = SPECIALS + _byte_level_alphabet() + ["Ġt", "he"]
    vocab = len(tokens)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test-llama")
    w.add_block_count(LAYERS)
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (vocab - len(SPECIALS)))
    w.add_token_merges(["Ġ t", "h e"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def t(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    emb = t(vocab, HIDDEN)  # (V, H); tied output
    w.add_tensor("token_embd.weight", emb)
    w.add_tensor("output_norm.weight", np.ones(HIDDEN, np.float32))
    kv = HIDDEN // HEADS * KV_HEADS
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(HIDDEN, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(HIDDEN, np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", t(HIDDEN, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_k.weight", t(kv, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_v.weight", t(kv, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_output.weight", t(HIDDEN, HIDDEN))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", t(FFN, HIDDEN))
        up = t(FFN, HIDDEN)  # quantized: the import must dequantize it
        q8 = gguf.quants.quantize(up, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(f"blk.{i}.ffn_up.weight", q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(f"blk.{i}.ffn_down.weight", t(HIDDEN, FFN))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
