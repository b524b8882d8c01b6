"""Can this machine get a config's hub base model? Asked before any data work, so a gated model
without a token fails in one line instead of deep inside `axolotl preprocess`.

    python -m skilltune.hub mistralai/Mistral-7B-Instruct-v0.3

Already in the Hugging Face cache: fine (offline too). Otherwise the hub is asked (`auth_check`,
the call the hub client itself makes): a gated repo without a token, a token without access, or an
unknown repo each get one line and exit 1, and so do a malformed repo id, a hub that answers with an
error, and a hub that cannot be reached or does not answer within HF_HUB_ETAG_TIMEOUT seconds
(default 10). Nothing is downloaded here; Axolotl downloads the model
into the cache (HF_HUB_CACHE, default ~/.cache/huggingface/hub) when it loads it. HF_TOKEN is
read from the environment by huggingface_hub and never printed.
"""

from __future__ import annotations

import sys

import click


def cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def access_problem(repo_id: str) -> str | None:
    """None when `repo_id` can be loaded here, else why not (one line)."""
    import httpx
    from huggingface_hub import auth_check, constants, get_session, get_token
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    try:
        if cached(repo_id):
            return None
    except HFValidationError as err:
        return f"{repo_id}: not a Hugging Face model id ({one_line(err)})"
    if constants.HF_HUB_OFFLINE:
        return (
            f"{repo_id}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE=1; "
            "unset it to download, or use STANDIN=1 for a local stand-in"
        )
    token = get_token()
    # the hub client's shared session has no timeout: a hub that accepts the connection and never answers
    # would hang here forever, so this one call gets the timeout the hub client uses for metadata requests
    session = get_session()
    timeout, session.timeout = session.timeout, httpx.Timeout(constants.HF_HUB_ETAG_TIMEOUT)
    try:
        auth_check(repo_id, token=token)
    except GatedRepoError:
        if token is None:
            return (
                f"{repo_id}: gated on the Hugging Face Hub: accept its terms at https://huggingface.co/{repo_id} "
                "and set HF_TOKEN to a token of that account"
            )
        return f"{repo_id}: gated, and HF_TOKEN has no access yet: accept its terms at https://huggingface.co/{repo_id}"
    except RepositoryNotFoundError:
        hint = "" if token else " (a private one needs HF_TOKEN)"
        return f"{repo_id}: no such model on the Hugging Face Hub{hint}"
    except OfflineModeIsEnabled:
        return f"{repo_id}: not in the Hugging Face cache and offline mode is on"
    except HfHubHTTPError as err:  # the hub answered, with an error that is neither of the above
        status = err.response.status_code if err.response is not None else None
        if status == 401 and token is not None:
            return f"{repo_id}: the Hugging Face Hub does not accept HF_TOKEN ({one_line(err)})"
        return f"{repo_id}: the Hugging Face Hub answered with an error ({one_line(err)})"
    except (httpx.HTTPError, OSError) as err:  # httpx: connection refused, DNS, timeouts, proxy errors
        return f"{repo_id}: cannot reach the Hugging Face Hub ({type(err).__name__}: {one_line(err)})"
    finally:
        session.timeout = timeout
    return None


def one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:200]


@click.command()
@click.argument("repo_id")
def main(repo_id: str) -> None:
    """Check that REPO_ID (a config's base_model) can be loaded: cached, or reachable with the token it needs."""
    from huggingface_hub import constants

    problem = access_problem(repo_id)
    if problem:
        click.echo(f"error: {problem}", err=True)
        sys.exit(1)
    where = "in the cache" if cached(repo_id) else "downloads on first load into"
    click.echo(f"{repo_id}: {where} {constants.HF_HUB_CACHE}")


if __name__ == "__main__":
    main()
