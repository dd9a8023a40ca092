"""Several chat requests decoded together through llama.cpp's low-level multi-sequence API.

One `llama_decode` call advances every running sequence by one token, so the weights are streamed
once per step for all of them instead of once per sequence. On a 2-core CPU the arithmetic, not
memory, is soon the limit: a step of 8 SmolLM2-135M Q4_1 sequences takes about 6 single steps
(its Q4_1 weights take per-column dot products, with no GEMM kernel to share the unpacking), so
steady decoding gains about 1.3x and a whole batch of hazard prompts 1.1-1.2x; Gemma-3-270m, whose
weights do get GEMM kernels, gains 1.2-1.3x (benchmarks/batching.py).

The decoder mirrors `Llama.create_chat_completion` as `LlamaCppTarget` calls it, so that batching
changes as little as llama.cpp allows:

* Each sequence has its own KV stream (`kv_unified=False`), so its attention reads only its own
  cells. With one shared buffer the cells of all sequences interleave and every attention sum is
  ordered differently: only 4 of 16 SmolLM2 answers then matched the one-at-a-time answers.
* A prompt is evaluated alone, exactly as the single path evaluates it: the chat template's shared
  prefix on its own, then the rest in chunks of `n_batch` (where that boundary falls changes the
  numbers). The prefix is evaluated once into a stream of its own and copied into each sequence.
* A generation step hands llama.cpp the running sequences as consecutive ids 0..k-1: for separate
  streams llama.cpp's `split_equal` cuts a batch into several micro-batches wherever the ids are
  not consecutive (each a full pass over the weights). So finished slots are refilled from the
  lowest id up and, when nothing is waiting, the highest running sequence moves into the gap.
* Sampling uses llama.cpp's own sampler chain per sequence, built as `Llama._init_sampler` builds
  it for the arguments `LlamaCppTarget` passes (repeat penalty over the last 64 generated tokens;
  greedy at temperature 0, else top-k 40, typical 1, top-p, min-p 0.05, temperature and a
  distribution seeded with the request's seed), so sampled answers draw the same random stream.
* Stop strings, end-of-generation tokens, the max-token cap and the text (bytes decoded once at the
  end, so a character split across tokens comes out whole) follow `_create_completion`.

What stays different: how many tokens a matrix product sees can change its rounding. For weights
that llama.cpp repacks for the CPU (e.g. Q4_0, Q4_K with AVX2) the product takes a 4-column GEMM
for all but the last `n % 4` columns and a GEMV for those and for a lone token, and tinyBLAS
(Q5_0, Q8_0, F16, ...) takes over only from 2 tokens up; the kernels round differently, and the
result also differed between 4 and 8 columns. So for such a model (Gemma-3-270m Q4_K_M: 9 of 16
greedy answers matched) an answer depends on how many sequences shared its steps and in which slot
it ran. Padding every step to a fixed width would remove that, but a step of 8 costs about 6
single steps on 2 cores, and most batches end with one long answer running alone. For models whose
products are the same at any width (SmolLM2 Q4_1: logits bit-identical at 1 to 16 sequences) the
answers equal the one-at-a-time answers. Either way, the same requests in the same order give the
same answers: every call starts from the same state.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from weighbridge.domain import ChatRequest, Generation, GenerationParams
from weighbridge.errors import WeighbridgeError

# Arguments `Llama.create_chat_completion` fills in with its defaults when LlamaCppTarget calls it
# (it passes only temperature, top_p, repeat_penalty and seed); the batched chain uses the same.
TOP_K = 40
MIN_P = 0.05
TYPICAL_P = 1.0
PENALTY_LAST_N = 64  # Llama(last_n_tokens_size=64)


@dataclass(frozen=True)
class Job:
    """One request ready to decode: its prompt tokens and the answer's token budget."""

    request: ChatRequest
    prompt: list[int]
    max_tokens: int


@dataclass
class _Sequence:
    """The state of one job while it is being decoded."""

    job: Job
    sampler: Any = None
    slot: int = -1
    n_past: int = 0
    generated: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    answer: bytes | None = None
    multibyte_fix: int = 0
    finish_reason: str = "length"
    done: bool = False
    seconds: float = 0.0


class BatchedDecoder:
    """A second llama.cpp context on an already loaded model, with one KV stream per sequence.

    Args:
        llm: the loaded `llama_cpp.Llama`; its weights, vocabulary and context settings (threads,
            batch sizes, attention options) are shared, so the numbers match its own context's.
        n_seq: how many sequences decode at once.
        prefix: tokens most prompts start with (the chat template up to the user's words).
        stop: strings that end an answer; the first one of this list found in the text is where
            the answer is cut, as in `_create_completion`.

    Memory: every stream holds a full context (`n_ctx` cells) and there are `n_seq + 1` of them
    (the last keeps the prefix): about 47 MB each for SmolLM2-135M at n_ctx 2048.
    """

    def __init__(self, llm: Any, n_seq: int, prefix: Sequence[int], stop: Sequence[str]) -> None:
        import llama_cpp

        if n_seq < 1:
            raise WeighbridgeError(f"A batch needs at least one sequence (got {n_seq})", "Use batch_size >= 1")
        self._lib: Any = llama_cpp
        self.n_seq = n_seq
        self.n_ctx = int(llm.n_ctx())
        self.n_batch = int(llm.n_batch)
        self._prefix_seq = n_seq  # the extra stream that keeps the evaluated prefix
        self._prefix = list(prefix)
        self._stops = [s.encode("utf-8") for s in stop if s]
        self._vocab = llm._model.vocab
        self._n_vocab = int(llm.n_vocab())
        self._closed = False
        self._batch: Any = None
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_seq_max = n_seq + 1
        params.n_ctx = self.n_ctx * (n_seq + 1)
        params.kv_unified = False
        self._ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not self._ctx:
            raise WeighbridgeError(
                f"llama.cpp could not create a context for {n_seq} sequences of {self.n_ctx} tokens",
                "Lower batch_size or n_ctx (the KV cache grows with both)",
            )
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        if llama_cpp.llama_n_ctx_seq(self._ctx) < self.n_ctx:
            self.close()
            raise WeighbridgeError(
                f"llama.cpp gave each sequence fewer than {self.n_ctx} tokens of context", "Use batch_size=1"
            )
        self._batch = llama_cpp.llama_batch_init(max(self.n_batch, n_seq), 0, 1)
        self._prefix_ready = False

    # -- llama.cpp plumbing ----------------------------------------------------------------------

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence id, wants logits) entries."""
        b = self._batch
        b.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        rc = self._lib.llama_decode(self._ctx, b)
        if rc != 0:
            raise WeighbridgeError(
                f"llama.cpp failed to decode a batch (llama_decode returned {rc})",
                "Retry with batch_size=1, and report the model and prompt: this should not happen",
            )

    def _eval(self, tokens: Sequence[int], seq: int, n_past: int) -> int:
        """Evaluate tokens into one sequence in chunks of n_batch, as `Llama.eval` does (logits for
        the last token of each chunk only). Returns the batch index of the last token."""
        last = 0
        for i in range(0, len(tokens), self.n_batch):
            chunk = tokens[i : i + self.n_batch]
            self._decode([(t, n_past + i + j, seq, j == len(chunk) - 1) for j, t in enumerate(chunk)])
            last = len(chunk) - 1
        return last

    def _forget(self, seq: int) -> None:
        self._lib.llama_memory_seq_rm(self._mem, seq, -1, -1)

    def _move(self, src: int, dst: int) -> None:
        """Move a sequence to another stream (a whole-stream copy; the cells keep their positions)."""
        self._forget(dst)
        self._lib.llama_memory_seq_cp(self._mem, src, dst, -1, -1)
        self._forget(src)

    def _piece(self, token: int) -> bytes:
        """The token's bytes as `LlamaModel.detokenize` makes them (special tokens render empty)."""
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return bytes(buf.raw[:n])

    def _new_sampler(self, p: GenerationParams) -> Any:
        """The chain `Llama._init_sampler` builds for these parameters (no grammar, no mirostat)."""
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        add = lib.llama_sampler_chain_add
        add(chain, lib.llama_sampler_init_penalties(self._n_vocab, PENALTY_LAST_N, p.repeat_penalty, 0.0, 0.0))
        if p.temperature < 0.0:
            add(chain, lib.llama_sampler_init_dist(p.seed))
        elif p.temperature == 0.0:
            add(chain, lib.llama_sampler_init_greedy())
        else:
            add(chain, lib.llama_sampler_init_top_k(TOP_K))
            add(chain, lib.llama_sampler_init_typical(TYPICAL_P, 1))
            add(chain, lib.llama_sampler_init_top_p(p.top_p, 1))
            add(chain, lib.llama_sampler_init_min_p(MIN_P, 1))
            add(chain, lib.llama_sampler_init_temp(p.temperature))
            add(chain, lib.llama_sampler_init_dist(p.seed))
        return chain

    # -- a sequence's life -----------------------------------------------------------------------

    def _start(self, s: _Sequence) -> int:
        """Give a sequence its prompt: the copied prefix when the prompt starts with it, then the
        rest. Returns the batch index holding the logits for its first token."""
        prompt = s.job.prompt
        n = len(self._prefix)
        self._forget(s.slot)
        start = 0
        if n and len(prompt) > n and prompt[:n] == self._prefix:
            if not self._prefix_ready:
                self._eval(self._prefix, self._prefix_seq, 0)
                self._prefix_ready = True
            self._lib.llama_memory_seq_cp(self._mem, self._prefix_seq, s.slot, -1, -1)
            start = n
        index = self._eval(prompt[start:], s.slot, start)
        s.n_past = len(prompt)
        s.sampler = self._new_sampler(s.job.request.params)
        return index

    def _accept(self, s: _Sequence, token: int) -> None:
        """Take a sampled token into the answer and decide whether the sequence is finished.

        The checks run in `_create_completion`'s order: an end-of-generation token ends the answer
        (and is not counted); otherwise the token is appended; while the text ends inside a
        multi-byte character nothing else is checked (so, as there, an answer can run a token or
        two past max_tokens to finish a character); then stop strings; then the cap.
        """
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            s.finish_reason, s.done = "stop", True
            return
        s.generated.append(token)
        s.text += self._piece(token)
        for k, char in enumerate(s.text[-3:]):
            k = 3 - k
            for num, pattern in ((2, 192), (3, 224), (4, 240)):
                if num > k and pattern & char == pattern:
                    s.multibyte_fix = num - k
        if s.multibyte_fix > 0:
            s.multibyte_fix -= 1
            if s.n_past + 1 >= self.n_ctx:  # the context is the one limit that cannot stretch
                s.finish_reason, s.done = "length", True
            return
        found = [stop for stop in self._stops if stop in s.text]
        if found:
            s.answer = bytes(s.text[: s.text.index(found[0])])
            s.finish_reason, s.done = "stop", True
        elif len(s.generated) >= s.job.max_tokens:
            s.finish_reason, s.done = "length", True

    def _finish(self, s: _Sequence) -> None:
        self._lib.llama_sampler_free(s.sampler)
        s.sampler = None
        self._forget(s.slot)

    def run(self, jobs: Sequence[Job]) -> list[Generation]:
        """Decode all jobs, `n_seq` at a time; a finished sequence's slot takes the next job.

        `Generation.seconds` is each request's share of the wall time: its own prompt evaluation,
        plus for every step it took part in, that step's time divided by the sequences in it. The
        shares add up to the time this call took (less bookkeeping between steps).
        """
        if self._closed:
            raise WeighbridgeError("The batched decoder is closed", "Open the target again")
        for slot in range(self.n_seq):  # whatever an interrupted call left behind
            self._forget(slot)
        seqs = [_Sequence(job=j) for j in jobs]
        pending = deque(seqs)
        by_slot: dict[int, _Sequence] = {}
        try:
            while pending or by_slot:
                # Refill the lowest free slots first, so that the running ids stay consecutive.
                while pending and len(by_slot) < self.n_seq:
                    s = pending.popleft()
                    s.slot = min(set(range(self.n_seq)) - by_slot.keys())
                    t0 = time.perf_counter()
                    index = self._start(s)
                    token = self._lib.llama_sampler_sample(s.sampler, self._ctx, index)
                    self._accept(s, token)
                    if s.done:
                        self._finish(s)
                    else:
                        by_slot[s.slot] = s
                    s.seconds += time.perf_counter() - t0
                if not by_slot:
                    continue
                # Close gaps left by finished sequences: move the highest into the lowest free slot.
                while max(by_slot) >= len(by_slot):
                    high = by_slot.pop(max(by_slot))
                    low = min(set(range(self.n_seq)) - by_slot.keys())
                    self._move(high.slot, low)
                    high.slot = low
                    by_slot[low] = high
                running = [by_slot[i] for i in range(len(by_slot))]
                t0 = time.perf_counter()
                self._decode([(s.generated[-1], s.n_past, s.slot, True) for s in running])
                for i, s in enumerate(running):
                    s.n_past += 1
                    self._accept(s, self._lib.llama_sampler_sample(s.sampler, self._ctx, i))
                share = (time.perf_counter() - t0) / len(running)
                for s in running:
                    s.seconds += share
                    if s.done:
                        self._finish(s)
                        del by_slot[s.slot]
        finally:
            for s in seqs:
                if s.sampler is not None:
                    self._finish(s)
        return [_generation(s) for s in seqs]

    def close(self) -> None:
        """Free the context and batch; must run before the model they borrow is freed."""
        if self._closed:
            return
        self._closed = True
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
        if self._ctx:
            self._lib.llama_free(self._ctx)


def _generation(s: _Sequence) -> Generation:
    text = s.answer if s.answer is not None else bytes(s.text)
    return Generation(
        request_id=s.job.request.id,
        # Decoded once, from all of the answer's bytes, as `_create_completion` does.
        text=text.decode("utf-8", errors="ignore"),
        prompt_tokens=len(s.job.prompt),
        completion_tokens=len(s.generated),
        seconds=s.seconds,
        finish_reason=s.finish_reason,
    )
