"""The one way skilltune talks to an OpenAI-compatible chat-completions endpoint (datagen llm,
datagen documents and eval's openai backend): the `openai` client, its own retries, and errors as
one readable line that names the endpoint (with any user:password@ in its URL masked)."""

from __future__ import annotations

import json
import os
import re
import socket
from urllib.parse import urlsplit


class EndpointError(RuntimeError):
    """A request that failed after the client's retries; str() is one line naming the endpoint."""


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def redact_url(text) -> str:
    """`text` with the user:password@ of every URL in it masked as ***@."""
    return _USERINFO.sub(r"\1***@", str(text))


def one_line(text) -> str:
    return " ".join(redact_url(text).split())[:300]


def base_url_problem(base_url: str) -> str | None:
    """Why `base_url` cannot be used (one line, the URL masked), or None."""
    shown = redact_url(base_url)
    if not re.match(r"^https?://[^/\s]+", base_url):
        return f"--base-url {shown!r}: expected http://HOST[:PORT]/PATH or https://..."
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
    except ValueError as err:
        return f"--base-url {shown!r}: {one_line(err)}"
    if "@" in parts.netloc:  # the client sends the key as a Bearer header; it cannot also send Basic auth
        return (
            f"--base-url {shown!r}: a user or password in the URL is not supported; give the API key in OPENAI_API_KEY"
        )
    return None


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


def _chain(err: BaseException) -> list[BaseException]:
    """`err` and the exceptions it was raised from, outermost first."""
    seen: list[BaseException] = []
    while err is not None and all(err is not known for known in seen) and len(seen) < 20:
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


def connection_problem(err: BaseException, url: str, context: str, timeout) -> str:
    """What went wrong below HTTP, read from the whole exception chain: the `openai` client calls a
    refused connection (and a server that hangs up) a timeout, and a body cut short a connection error."""
    import aiohttp

    chain = _chain(err)

    def find(*kinds):
        return next((e for e in chain if isinstance(e, kinds)), None)

    if find(ConnectionRefusedError):
        return f"cannot reach {url}{context}: connection refused (nothing listens there)"
    dns = find(getattr(aiohttp, "ClientConnectorDNSError", ()), socket.gaierror)
    if dns:
        return f"cannot reach {url}{context}: its host name does not resolve ({one_line(dns)})"
    cut = find(aiohttp.ClientPayloadError)
    if cut:
        return f"the answer from {url}{context} was cut short: {one_line(getattr(chain[-1], 'message', chain[-1]))}"
    if find(aiohttp.ServerDisconnectedError, ConnectionResetError):
        return f"{url}{context}: the server closed the connection without an answer"
    certificate = find(getattr(aiohttp, "ClientSSLError", ()))
    if certificate:
        return f"cannot reach {url}{context}: TLS failed: {one_line(certificate)}"
    bad_http = find(aiohttp.ClientResponseError)
    if bad_http:
        return f"{url}{context} did not answer in HTTP: {one_line(bad_http.message)}"
    if find(TimeoutError) or type(err).__name__ == "APITimeoutError":
        seconds = f"{timeout:g}" if isinstance(timeout, (int, float)) else one_line(timeout)
        return f"no answer from {url} within {seconds} s (timed out){context}"
    return f"cannot reach {url}{context}: {type(chain[-1]).__name__}: {one_line(chain[-1])}"


async def post_chat(client, body: dict, base_url: str, context: str) -> dict:
    """One chat completion as plain JSON. `context` follows the URL in error messages
    (" for record 3", " (weather request 2; --max-retries 5)"). Whatever the server does, this
    returns a dict or raises EndpointError."""
    import aiohttp
    import openai

    url = redact_url(base_url)
    problem = base_url_problem(base_url)
    if problem:
        raise EndpointError(problem)
    key = os.environ.get("OPENAI_API_KEY")

    def clean(text) -> str:  # a server may quote the key back in its error message
        text = one_line(text)
        return text.replace(key, "***") if key and len(key) >= 4 else text

    try:
        # `client.post` is the client's documented door for raw bodies: the same retries, backoff,
        # Retry-After and timeouts as `chat.completions.create`, without its per-request walk of
        # the typed parameters, and (cast_to=dict) without building pydantic models of the answer
        # only to dump them again: together about 4 ms of CPU a request, most of what it costs.
        response = await client.post("/chat/completions", body=body, cast_to=dict)
    except openai.APIStatusError as err:
        raise EndpointError(f"{url} answered HTTP {err.status_code}{context}: {clean(err.message)}") from None
    except (openai.APIConnectionError, aiohttp.ClientError, OSError) as err:  # includes timeouts
        raise EndpointError(clean(connection_problem(err, url, context, client.timeout))) from None
    except openai.OpenAIError as err:
        raise EndpointError(f"{url}{context}: {type(err).__name__}: {clean(err)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:  # a 200 whose body is cut short or not JSON
        raise EndpointError(f"{url}{context}: the answer is not JSON (cut short?): {clean(err)}") from None
    except RecursionError:
        raise EndpointError(f"{url}{context}: the answer is JSON nested too deeply to read") from None
    if not isinstance(response, dict):
        raise EndpointError(f"{url}{context}: the answer is not a JSON object: {clean(response)}")
    return response
