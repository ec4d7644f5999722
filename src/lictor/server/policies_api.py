"""Policy changes over HTTP, and the threads that keep every replica on the active version.

``POST /v1/policies`` takes a whole bundle (``{"files": {name: yaml}}``) and
``POST /v1/policies/reload`` re-reads the policy directory; either is refused with the
precise error (file and line in ``detail``) when the bundle does not load or one of its
own tests fails, and then nothing changes. :class:`PolicyReplication` polls the store's
active pointer (every replica converges within ``policy_poll_seconds``) and, with
``policy_watch``, proposes the directory again whenever a YAML file in it changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from lictor.errors import ConfigError, LictorError, PolicyError
from lictor.server.problems import HTTPProblem
from lictor.service.lifecycle import PolicyLifecycle
from lictor.service.policies import Bundle
from lictor.service.ports import Credential

if TYPE_CHECKING:
    from lictor.server.runtime import Runtime

log = logging.getLogger("lictor.server.policies")

MAX_TEXT: Final = 1000
WATCH_AUTHOR: Final = "lictor:watch"
START_AUTHOR: Final = "lictor:serve"
WATCH_DEBOUNCE_MS: Final = 300


def _pointer_for(error: PolicyError) -> str:
    """A JSON pointer into the upload body for the file an error is about."""
    if error.source is None:
        return "/files"
    escaped = error.source.replace("~", "~0").replace("/", "~1")
    return f"/files/{escaped}"


def _text_field(body: Mapping[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise HTTPProblem(
            "invalid-request",
            f"expected a string of at most {MAX_TEXT} characters",
            pointer=f"/{name}",
        )
    return value


def parse_upload(body: object, caller: Credential) -> tuple[dict[str, str], str, str]:
    """Validate an upload body: ``files`` (name -> YAML text), optional author and message.

    Raises:
        HTTPProblem: 422 with a pointer to the bad field.
    """
    if not isinstance(body, dict):
        raise HTTPProblem("invalid-request", "expected an object with 'files'", pointer="/")
    unknown = sorted(set(body) - {"files", "author", "message"})
    if unknown:
        raise HTTPProblem(
            "invalid-request", f"unknown field {unknown[0]!r}", pointer=f"/{unknown[0]}"
        )
    files = body.get("files")
    if not isinstance(files, dict) or not files:
        raise HTTPProblem(
            "invalid-request",
            "files must map at least one file name (a.yaml) to its YAML text",
            pointer="/files",
        )
    for name, text in files.items():
        if not isinstance(text, str):
            escaped = str(name).replace("~", "~0").replace("/", "~1")
            raise HTTPProblem(
                "invalid-request", "expected the file's YAML text", pointer=f"/files/{escaped}"
            )
    author = _text_field(body, "author", caller.subject)
    message = _text_field(body, "message", "")
    return dict(files), author, message


def version_json(bundle: Bundle, *, author: str, message: str) -> dict[str, Any]:
    """The answer to a successful change: what is now live everywhere."""
    return {
        "version": bundle.version,
        "rule_count": len(bundle.policy.rules),
        "author": author,
        "message": message,
        "active": True,
    }


async def upload_policy(runtime: Runtime, request: Request, caller: Credential) -> Response:
    """``POST /v1/policies``: check, store and activate an uploaded bundle (admin)."""
    from lictor.server.app import json_response, read_json

    body = await read_json(request, runtime.settings.max_body_bytes)
    files, author, message = parse_upload(body, caller)
    try:
        bundle = await anyio.to_thread.run_sync(
            lambda: runtime.lifecycle.propose_files(files, author=author, message=message)
        )
    except PolicyError as exc:
        raise HTTPProblem(
            "invalid-request", f"bundle refused: {exc}", pointer=_pointer_for(exc)
        ) from None
    log.info("policy %s uploaded by %s (credential %s)", bundle.version, author, caller.id)
    return json_response(version_json(bundle, author=author, message=message), status=201)


async def reload_policies(runtime: Runtime, request: Request, caller: Credential) -> Response:
    """``POST /v1/policies/reload``: check and activate the policy directory (admin)."""
    from lictor.server.app import json_response

    if request.query_params:
        raise HTTPProblem(
            "invalid-request",
            "this endpoint takes no parameters",
            parameter=next(iter(request.query_params)),
        )
    root = runtime.settings.policies
    message = f"reloaded from {root.name or root}"
    try:
        bundle = await anyio.to_thread.run_sync(
            lambda: runtime.lifecycle.propose_directory(
                root, author=caller.subject, message=message
            )
        )
    except PolicyError as exc:
        raise HTTPProblem("invalid-request", f"bundle refused: {exc}") from None
    except ConfigError as exc:
        raise HTTPProblem("conflict", f"bundle refused: {exc}") from None
    return json_response(version_json(bundle, author=caller.subject, message=message))


class PolicyReplication:
    """Keeps this process on the store's active version; optionally watches the directory.

    Both loops run in daemon threads and stop on :meth:`close`. A poll that fails (the
    store is briefly away) is logged and retried on the next tick; a directory change
    that is refused is logged and the live policy stays.
    """

    def __init__(
        self,
        lifecycle: PolicyLifecycle,
        *,
        poll_seconds: float,
        watch: Path | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._poll_seconds = poll_seconds
        self._watch = watch
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.watching = threading.Event()
        """Set once the directory watcher runs (tests wait on it before writing files)."""

    def start(self) -> PolicyReplication:
        """Start the poller (and the watcher); return self."""
        targets = [("lictor-policy-sync", self._poll)]
        if self._watch is not None:
            targets.append(("lictor-policy-watch", self._watch_directory))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop both loops and wait for them. Idempotent."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self._lifecycle.sync()
            except LictorError as exc:
                log.warning("policy sync failed, retrying: %s", exc)
            except Exception:
                log.exception("policy sync failed")

    def _watch_directory(self) -> None:
        from watchfiles import watch

        root = self._watch
        if root is None:  # pragma: no cover - start() only runs this with a directory
            return
        self.watching.set()
        try:
            for changes in watch(
                root,
                stop_event=self._stop,
                debounce=WATCH_DEBOUNCE_MS,
                raise_interrupt=False,
            ):
                names = sorted(
                    {Path(path).name for _, path in changes if path.endswith((".yaml", ".yml"))}
                )
                if names:
                    self._propose(root, names)
        except Exception:
            log.exception("watching %s stopped", root)

    def _propose(self, root: Path, names: list[str]) -> None:
        try:
            bundle = self._lifecycle.propose_directory(
                root, author=WATCH_AUTHOR, message="changed: " + ", ".join(names)
            )
        except (PolicyError, ConfigError) as exc:
            log.error("policy change in %s refused, the live policy stays: %s", root, exc)
        except LictorError as exc:
            log.error("policy change in %s not applied: %s", root, exc)
        else:
            log.info("policy %s from %s is live", bundle.version, root)


def start_policy_lifecycle(runtime: Runtime) -> None:
    """Record the bundle the runtime started with, settle the live version, start polling.

    Raises:
        StoreError: the versions table could not be read or written.
    """
    settings = runtime.settings
    runtime.lifecycle.start(
        author=START_AUTHOR, message=f"loaded at start from {settings.policies}"
    )
    runtime.replication = PolicyReplication(
        runtime.lifecycle,
        poll_seconds=settings.policy_poll_seconds,
        watch=settings.policies if settings.policy_watch else None,
    ).start()
