"""A real Llama checkpoint whose weights are set by hand so that its answers are known in advance.

Every layer's output projections (attention ``o_proj``, MLP ``down_proj``) are zero, so the residual
stream at a position is the embedding of the token there: the next token depends on the current one
only, a chain written into the embedding and the (untied) output head. After ``<|assistant|>`` (the
end of every chat prompt) the model writes ``\\boxed{`` then ``4`` with probability ``p_four`` or
``5`` otherwise, then ``}`` and ends. So a prompt whose reference answer is 4 has an expected pass
rate of ``p_four``, answer 5 of ``1 - p_four``, any other answer 0: what the curation tests check.
It loads through ``AutoModelForCausalLM`` and runs in the rollout actors like any checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path


def write_answer_model(out_dir: Path, p_four: float = 0.8) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from k15ray.models.tokenizer import ASSISTANT_TOKEN, build_tokenizer, save_tokenizer

    tok = build_tokenizer()
    vocab = tok.get_vocab()
    hidden = 16
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        rms_norm_eps=1e-6,
    )
    model = LlamaForCausalLM(config).eval()
    chain = [ASSISTANT_TOKEN, "\\", "b", "o", "x", "e", "d", "{"]
    states = {t: i for i, t in enumerate(chain)}  # one embedding direction per state
    states.update({"4": 8, "5": 8, "}": 9})
    other = 10
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        emb = model.model.embed_tokens.weight
        emb.zero_()
        emb[:, other] = 1.0
        for token, state in states.items():
            emb[vocab[token]].zero_()
            emb[vocab[token], state] = 1.0
        head = model.lm_head.weight  # logit[v] = head[v, state] * sqrt(hidden) after RMSNorm
        head.zero_()
        scale = 30.0
        for current, following in zip(chain, chain[1:], strict=False):
            head[vocab[following], states[current]] = scale
        head[vocab["4"], states["{"]] = scale + math.log(p_four) / math.sqrt(hidden)
        head[vocab["5"], states["{"]] = scale + math.log(1 - p_four) / math.sqrt(hidden)
        head[vocab["}"], 8] = scale
        head[tok.eos_token_id, 9] = scale
        head[tok.eos_token_id, other] = scale
    model.save_pretrained(str(out_dir))
    save_tokenizer(tok, out_dir)
    return out_dir
