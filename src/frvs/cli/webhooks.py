"""frvs webhook add|list|remove: the webhooks every replica delivers alerts to (from the
store's durable queue; audited; effective at once, without restarting 'frvs serve')."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from frvs.app import Application
from frvs.cli.context import JsonOption, caller, domain_errors, emit_json, state
from frvs.core.errors import InvalidInputError

console = Console()

webhook_app = typer.Typer(help="Add, list and remove webhooks (delivered by any replica).",
                          no_args_is_help=True)


def _app(ctx: typer.Context) -> Application:
    app = state(ctx).app
    app.store.open()
    return app


@webhook_app.command("add")
def webhook_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the webhook.")],
    url: Annotated[str, typer.Argument(help="http(s) URL alerts are POSTed to.")],
    secret_env: Annotated[str, typer.Option(
        help="The environment variable holding the HMAC secret (16+ characters; kept out "
             "of the command line and shell history).")] = "FRVS_WEBHOOK_SECRET",
    attempts: Annotated[int, typer.Option(min=1, max=20, help="Attempts before giving "
                                          "up.")] = 4,
    as_json: bool = JsonOption,
) -> None:
    """Add a webhook: alerts raised or decided from now on are queued for it."""
    with domain_errors(as_json):
        secret = os.environ.get(secret_env, "")
        if not secret:
            raise InvalidInputError(f"set the webhook's secret in {secret_env}")
        app = _app(ctx)
        hook = app.webhooks.add(caller(app), name, url, secret, attempts)
    if as_json:
        emit_json(hook.as_dict())
        return
    console.print(f"webhook [bold]{hook.name}[/]: {hook.url}", highlight=False)


@webhook_app.command("list")
def webhook_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Every webhook with its deliveries by state (never the secret)."""
    with domain_errors(as_json):
        hooks = _app(ctx).webhooks.list()
    if as_json:
        emit_json({"webhooks": [h.as_dict() for h in hooks]})
        return
    table = Table("name", "url", "attempts", "pending", "delivered", "failed")
    for h in hooks:
        table.add_row(h.name, h.url, str(h.attempts), str(h.pending), str(h.delivered),
                      str(h.failed))
    console.print(table)


@webhook_app.command("remove")
def webhook_remove(ctx: typer.Context,
                   name: Annotated[str, typer.Argument(help="The webhook's name.")],
                   as_json: bool = JsonOption) -> None:
    """Remove a webhook and the deliveries still queued for it."""
    with domain_errors(as_json):
        app = _app(ctx)
        hook = app.webhooks.remove(caller(app), name)
    if as_json:
        emit_json({"removed": hook.as_dict()})
        return
    console.print(f"webhook {hook.name} removed")
