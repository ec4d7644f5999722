"""``lictor serve`` and ``lictor init``: run the HTTP decision API, prepare its data.

``serve`` binds its socket itself and prints ``listening on http://HOST:PORT`` on
stderr, so ``--port 0`` tells the caller which port it got. On SIGINT or SIGTERM,
uvicorn stops accepting, lets requests in flight finish, and then the app's lifespan
shutdown flushes the audit writer, signs a final checkpoint and closes the store.
(uvicorn then re-raises the signal, so the exit status says "terminated by SIGTERM".)
With ``--workers N`` (N > 1) the process opens and migrates the store once, then
supervises N worker processes on the same socket (:func:`_serve_workers`).

Helpers from :mod:`lictor.cli.main` are imported when a command runs, not at import
time: main registers these commands, so a top-level import would be circular.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from lictor.errors import ConfigError
from lictor.settings import Settings, load_settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from lictor.server.runtime import Runtime
    from lictor.store import Store

__all__ = ["load_cli_settings", "register", "worker_app"]

GRACEFUL_SHUTDOWN_SECONDS = 10

WORKER_START_SECONDS = 60

WORKER_SETTINGS_ENV = "_LICTOR_WORKER_SETTINGS"
"""How ``serve --workers`` hands its settings to the worker processes it spawns.

Not ``LICTOR_*``: ``load_settings`` refuses unknown variables of that prefix.
"""

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Settings file (default: lictor.toml here).")
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (lictor.db, checkpoint-key.pem)."),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: sqlite:///<data-dir>/lictor.db)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def load_cli_settings(config: Path | None, **overrides: Any) -> Settings:
    """Load settings, then apply the command line's options (those that were given).

    Raises:
        ConfigError: the file or a value is invalid.
    """
    settings = load_settings(config)
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"option {where}: {first['msg']}") from None


@contextmanager
def existing_store(settings: Settings, *, migrate: bool = False) -> Iterator[Store]:
    """Open the configured store for an operator command, never creating one.

    A mistyped ``--data-dir`` must not read as an empty trail or inventory, so a SQLite
    file that is not there is a clear error. ``migrate`` brings the schema up to date
    first (commands that write); read-only commands leave it as it is.

    Raises:
        ConfigError: the URL is not a database URL, or the SQLite file does not exist.
    """
    # Imported here: SQLAlchemy and Alembic cost a noticeable part of every CLI start.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from lictor.store import open_store

    url = settings.resolved_store_url
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"store URL {url!r} is not a database URL: {exc}") from exc
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and not Path(database).is_file():
        raise ConfigError(
            f"no Lictor store at {database}; run `lictor init` (or `lictor serve` once) "
            "to create it, or pass --data-dir or --store"
        )
    store = open_store(url)
    try:
        if migrate:
            store.migrate()
        yield store
    finally:
        store.close()


def _bind(host: str, port: int) -> socket.socket:
    """Bind a listening socket ourselves, so port 0 yields a port we can print."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    # (base_events._set_nodelay), and without it every response waits ~40 ms on Nagle
    # and the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _choose(module: str, fast: str, fallback: str) -> str:
    """Use an optional accelerator (uvloop, httptools) only when it is installed."""
    return fast if importlib.util.find_spec(module) is not None else fallback


def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind.")] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port to bind; 0 picks a free one.")
    ] = None,
    policies: Annotated[
        Path | None, typer.Option("--policies", "-p", help="Policy bundle directory.")
    ] = None,
    agents: Annotated[
        Path | None, typer.Option("--agents", "-a", help="Inventory file loaded at start.")
    ] = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (off by default).")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Reload the policy directory when a file in it changes."),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Server processes sharing the port (default 1)."),
    ] = None,
) -> None:
    """Run the HTTP decision API until SIGINT or SIGTERM."""
    import uvicorn

    from lictor.cli.main import errors_mapped
    from lictor.server.app import create_app
    from lictor.server.runtime import Runtime

    with errors_mapped():
        settings = load_cli_settings(
            config,
            host=host,
            port=port,
            policies=policies,
            agents=agents,
            store_url=store,
            data_dir=data_dir,
            policy_watch=True if watch else None,
            workers=workers,
        )
        logging.getLogger("lictor").setLevel(settings.log_level.upper())
        sock = _bind(settings.host, settings.port)
        try:
            runtime = Runtime.open(settings)
        except BaseException:
            sock.close()
            raise
        if settings.workers > 1:
            _serve_workers(settings, runtime, sock, access_log=access_log)
            return
        try:
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(runtime, close_on_shutdown=True),
                    loop=_choose("uvloop", "uvloop", "asyncio"),
                    http=_choose("httptools", "httptools", "h11"),
                    lifespan="on",
                    access_log=access_log,
                    log_level=settings.log_level,
                    timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                    server_header=False,
                )
            )
            _announce(sock, runtime)
            server.run(sockets=[sock])
        finally:
            runtime.close()
            sock.close()


def _announce(sock: socket.socket, runtime: Runtime, extra: str = "") -> None:
    """Print the ``listening on`` line that scripts and tests wait for."""
    from lictor.cli.main import err

    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    err.print(
        f"lictor serve: listening on http://{shown}:{bound_port} "
        f"(store {runtime.store.database.description}, policy {runtime.bundle.version}{extra})",
        markup=False,
        soft_wrap=True,
    )


def _serve_workers(
    settings: Settings, runtime: Runtime, sock: socket.socket, *, access_log: bool
) -> None:
    """Run ``settings.workers`` server processes on one listening socket until stopped.

    The parent has opened (migrated, seeded) the store once; it closes that runtime, and
    each worker opens its own. Every worker appends to the same audit chain: an append
    takes the database's write lock, reads the head and inserts after it (see
    :mod:`lictor.store.audit`), so processes interleave whole group commits and the
    chain stays one sequence. State kept in memory (caches, sessions without a shared
    store) is per worker, as it is per replica.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    try:
        _announce(sock, runtime, f", {settings.workers} workers")
    finally:
        runtime.close()
    os.environ[WORKER_SETTINGS_ENV] = settings.model_dump_json()
    config = uvicorn.Config(
        f"{__name__}:worker_app",
        factory=True,
        workers=settings.workers,
        loop=_choose("uvloop", "uvloop", "asyncio"),
        http=_choose("httptools", "httptools", "h11"),
        lifespan="on",
        access_log=access_log,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # A worker answers the supervisor's pings only once it has imported and opened
        # its runtime; on a busy machine that takes longer than uvicorn's 5 s default,
        # and a worker killed as "hung" while starting would be restarted forever.
        timeout_worker_healthcheck=WORKER_START_SECONDS,
        server_header=False,
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


def worker_app() -> Starlette:
    """Build one worker's app (``lictor serve --workers N``), from the parent's settings.

    Runs in a freshly spawned process: uvicorn's supervisor calls it by import path.
    """
    from lictor.server.app import create_app
    from lictor.server.runtime import Runtime

    settings = Settings.model_validate_json(os.environ[WORKER_SETTINGS_ENV])
    logging.getLogger("lictor").setLevel(settings.log_level.upper())
    return create_app(Runtime.open(settings), close_on_shutdown=True)


def init(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    store: StoreOpt = None,
    admin_name: Annotated[
        str, typer.Option("--admin-name", help="Subject of the first admin credential.")
    ] = "admin",
    as_json: JsonOpt = False,
) -> None:
    """Create the data directory, checkpoint key and schema; print a first admin token once."""
    from lictor.cli.main import err, errors_mapped, out
    from lictor.server.runtime import initialize

    with errors_mapped():
        settings = load_cli_settings(config, data_dir=data_dir, store_url=store)
        report = initialize(settings, admin_name=admin_name)
    token = report.admin.token if report.admin is not None else None
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "data_dir": str(report.data_dir),
                    "key_path": str(report.key_path),
                    "key_created": report.key_created,
                    "key_id": report.key_id,
                    "store": report.store_url,
                    "admin": report.admin.credential.to_json() if report.admin else None,
                    "token": token,
                }
            )
        )
        return
    key = "created" if report.key_created else "kept"
    err.print(f"data directory  {report.data_dir}", markup=False)
    err.print(f"checkpoint key  {report.key_path} ({key}, key id {report.key_id})", markup=False)
    err.print(f"store           {report.store_url} (schema up to date)", markup=False)
    if report.admin is None:
        err.print(
            "an active admin credential exists already; no token issued "
            "(add one with: lictor credentials create --admin NAME --role admin)",
            markup=False,
        )
        return
    err.print(
        f"admin credential {report.admin.credential.id} for {report.admin.credential.subject!r}; "
        "its token is shown once, keep it secret:",
        markup=False,
    )
    out.print(token, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``init`` to the ``lictor`` command."""
    app.command("serve")(serve)
    app.command("init")(init)
