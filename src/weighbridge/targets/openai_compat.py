"""Any OpenAI-compatible chat server: vLLM, llama.cpp's server, hosted APIs."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from weighbridge.domain import ChatRequest, EndpointSpec, Generation
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import Capability


class OpenAICompatTarget:
    """Talks the `/v1/chat/completions` protocol over HTTP.

    Requests in a batch are sent concurrently (servers such as vLLM batch them on the GPU); the
    order of the answers always matches the order of the requests.
    """

    def __init__(self, spec: EndpointSpec) -> None:
        self.spec = spec
        self.name = spec.model
        self.batch_size = spec.concurrency
        self.capabilities: frozenset[Capability] = frozenset({"chat", "batch"})
        headers = {}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise WeighbridgeError(
                    f"The endpoint needs an API key in ${spec.api_key_env}, which is not set",
                    f"Export {spec.api_key_env}=... before running",
                )
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(base_url=spec.base_url.rstrip("/"), headers=headers, timeout=spec.timeout_s)
        self._check()

    def _check(self) -> None:
        """Fail at once, before anything is stored, when the server is down or does not serve the model."""
        try:
            resp = self._client.get("/models", timeout=10.0)
        except httpx.HTTPError as exc:
            raise WeighbridgeError(
                f"Cannot reach the endpoint {self.spec.base_url} ({type(exc).__name__})",
                "Start the server or correct base_url in the model.yaml",
            ) from exc
        if resp.status_code in (401, 403):
            raise WeighbridgeError(
                f"The endpoint {self.spec.base_url} refused the credentials (HTTP {resp.status_code})",
                "Check the API key named by api_key_env in the model.yaml",
            )
        if resp.status_code >= 400:
            raise WeighbridgeError(
                f"The endpoint {self.spec.base_url} answered HTTP {resp.status_code} to GET /models",
                "Check that base_url ends with the API root, e.g. http://127.0.0.1:8000/v1",
            )

    def describe(self) -> dict[str, Any]:
        return {"adapter": "openai_compat", "base_url": self.spec.base_url, "model": self.spec.model}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        if len(requests) <= 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.batch_size, len(requests))) as pool:
            return list(pool.map(self._one, requests))

    def _one(self, request: ChatRequest) -> Generation:
        p = request.params
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": p.seed,
        }
        if self.spec.sampling_extensions:
            # llama.cpp's server applies repeat_penalty=1.1 unless told otherwise; vLLM calls it
            # repetition_penalty. Strict OpenAI APIs reject both: set sampling_extensions: false.
            body["repeat_penalty"] = p.repeat_penalty
            body["repetition_penalty"] = p.repeat_penalty
        start = time.perf_counter()
        try:
            resp = self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise WeighbridgeError(
                f"The endpoint {self.spec.base_url} failed during generation ({type(exc).__name__})",
                "Check the server, then rerun the same command: finished samples are kept",
            ) from exc
        if resp.status_code >= 400:
            raise WeighbridgeError(
                f"The endpoint answered HTTP {resp.status_code}: {resp.text[:200]}",
                "Check the model name and sampling settings in the model.yaml, then rerun the same command",
            )
        seconds = time.perf_counter() - start
        out = resp.json()
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Generation(
            request_id=request.id,
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

    def close(self) -> None:
        self._client.close()
