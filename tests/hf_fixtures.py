"""A tiny Llama-architecture Hugging Face directory built in the test: random weights, a byte-level
BPE tokenizer trained on a few sentences, a ChatML chat template. Milliseconds to build and load,
so the transformers target's mechanics (padding, batching, template, stop, counts) are tested
without a real model."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "Which city is the capital of France? The capital of France is Paris.",
    "How do I bake bread? Mix flour, water, salt and yeast, then bake it.",
    "Tell me a story about a dragon who guards a library of old books.",
    "user assistant system hello world, please answer the question briefly.",
]


def build_tiny_hf(path: Path, *, seed: int = 0, eos_first: bool = False) -> Path:
    """Write the tiny model to `path`. `eos_first`: every logit 0, so greedy decoding picks token 0,
    which that model's generation config names as an end token: it stops at once."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.chat_template = CHATML
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = eos
    if eos_first:
        with torch.no_grad():
            model.lm_head.weight.zero_()  # every logit 0: greedy takes the lowest id, <|endoftext|> (0)
        model.generation_config.eos_token_id = [eos, 0]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
