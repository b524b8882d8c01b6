"""The one way skilltune talks to an OpenAI-compatible chat-completions endpoint (datagen llm and
eval's openai backend): the `openai` client, its own retries, and errors as one readable line."""

from __future__ import annotations

import os


class EndpointError(RuntimeError):
    """A request that failed after the client's retries; str() is one line naming the endpoint."""


def one_line(text) -> str:
    return " ".join(str(text).split())[:300]


def async_client(base_url: str, max_retries: int, timeout: float):
    """An AsyncOpenAI client. The key comes from OPENAI_API_KEY and goes to the client only; local
    servers accept any placeholder, so a missing key does not stop them being used."""
    import openai

    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=os.environ.get("OPENAI_API_KEY") or "none",
        max_retries=max_retries,
        timeout=timeout,
        # aiohttp under the client's own retry logic: less CPU per request than the default
        # transport (0.54 s against 0.71 s of client CPU for 180 requests, measured here), and CPU
        # is what bounds throughput at high concurrency (BENCHMARKS.md)
        http_client=openai.DefaultAioHttpClient(timeout=timeout),
    )


async def post_chat(client, body: dict, base_url: str, context: str) -> dict:
    """One chat completion as plain JSON. `context` follows the URL in error messages
    (" for record 3", " (weather request 2; --max-retries 5)")."""
    import openai

    try:
        # `client.post` is the client's documented door for raw bodies: the same retries, backoff,
        # Retry-After and timeouts as `chat.completions.create`, without its per-request walk of
        # the typed parameters, and (cast_to=dict) without building pydantic models of the answer
        # only to dump them again: together about 4 ms of CPU a request, most of what it costs.
        response = await client.post("/chat/completions", body=body, cast_to=dict)
    except openai.APIConnectionError as err:  # includes timeouts
        raise EndpointError(f"cannot reach {base_url}{context}: {type(err).__name__}: {one_line(err)}") from None
    except openai.APIStatusError as err:
        raise EndpointError(f"{base_url} answered HTTP {err.status_code}{context}: {one_line(err.message)}") from None
    except openai.OpenAIError as err:
        raise EndpointError(f"{base_url}{context}: {type(err).__name__}: {one_line(err)}") from None
    if not isinstance(response, dict):
        raise EndpointError(f"{base_url}{context}: the answer is not a JSON object: {one_line(response)}")
    return response
