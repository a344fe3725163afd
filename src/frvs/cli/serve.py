"""serve: run the HTTP service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from frvs.cli.admin import ensure_admin_key
from frvs.cli.context import domain_errors, state
from frvs.core.errors import InvalidInputError
from frvs.core.hosts import is_loopback
from frvs.pipeline.leases import Replica, ReplicaRole

logger = logging.getLogger(__name__)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    role: Annotated[ReplicaRole | None, typer.Option(
        help="all (API and cameras; default), api (no cameras) or cameras (cameras, with "
        "only /healthz and camera status over HTTP).")] = None,
    replica: Annotated[str | None, typer.Option(
        help="This replica's name among several on one store (default host:port).")] = None,
    init: Annotated[bool, typer.Option(
        "--init", help="On a first start (no admin key yet), create the data directory, "
        "the store and the first admin key, and print the key once.")] = False,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="Serve HTTPS with this PEM certificate (chain); needs --tls-key. "
        "Edge nodes verify it (system CAs or their --ca-file).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", help="The certificate's PEM private key.")] = None,
) -> None:
    """Serve the REST API (OpenAPI at /docs) until interrupted."""
    with domain_errors(False):
        if (tls_cert is None) != (tls_key is None):
            raise InvalidInputError("give both --tls-cert and --tls-key, or neither")
        for path in (tls_cert, tls_key):
            if path is not None and not path.is_file():
                raise InvalidInputError(f"{path} is not a readable file")
        app = state(ctx).app
        token = ensure_admin_key(app) if init else None
        if not init:
            app.store.open()
            no_admin = not app.oversight.keys.has_active_admin()
    if token is not None:
        typer.secho(f"first start: admin key (shown once, stored only as a hash): {token}",
                    fg=typer.colors.GREEN, err=True)
    elif not init and no_admin:
        # Nothing could sign in to this service: say how to get the first key.
        typer.secho("warning: no active admin key in this data directory, so nobody can "
                    "use the API or console yet; stop and run 'frvs serve --init' (or "
                    "'frvs init') to create the first one", fg=typer.colors.YELLOW, err=True)
    settings = app.settings.server
    bind_host = host or settings.host
    bind_port = port or settings.port
    # Which cameras run here is settled by leases in the store (pipeline/leases.py).
    app.video.leases.bind(Replica(replica or app.settings.replica.name
                                  or f"{bind_host}:{bind_port}",
                                  role or app.settings.replica.role))
    if not is_loopback(bind_host) and tls_cert is None:
        typer.secho(
            f"warning: binding {bind_host} exposes biometric endpoints beyond this machine; "
            "serve with --tls-cert/--tls-key or put FRVS behind a TLS-terminating proxy.",
            fg=typer.colors.YELLOW,
            err=True,
        )
    logging.getLogger("frvs").setLevel(logging.INFO)
    # Imported here so that other commands do not pay for the web stack at start-up.
    import uvicorn

    from frvs.api.app import create_api

    uvicorn.run(create_api(app), host=bind_host, port=bind_port, log_level="info",
                ssl_certfile=str(tls_cert) if tls_cert else None,
                ssl_keyfile=str(tls_key) if tls_key else None)
