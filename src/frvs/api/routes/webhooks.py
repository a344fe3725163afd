"""/v1/webhooks (admin): add and remove the webhooks every replica delivers alerts to,
from the store's durable queue (GET /v1/webhooks, in routes/video.py, lists them with
the configured ones). Adding or removing one is audited and takes effect at once,
without a restart; the secret is never shown again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frvs.alerts.webhooks import Webhook
from frvs.api.auth import Admin
from frvs.api.deps import AppDep

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookName = Annotated[str, Path(max_length=100, examples=["soc"])]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "soc", "url": "https://soc.example.org/frvs", "secret": "a-long-shared-secret"}]})

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    url: str = Field(min_length=1, max_length=2000, description="http(s); public hosts "
                     "unless video.allow_private_sources.")
    secret: str = Field(min_length=16, max_length=500, description="HMAC-SHA256 key "
                        "signing each body (X-FRVS-Signature over 'timestamp.body').")
    attempts: int = Field(4, ge=1, le=20, description="Attempts before giving up; retries "
                          "back off exponentially.")


class WebhookPublic(BaseModel):
    name: str
    url: str = Field(description="The URL with any password hidden.")
    attempts: int
    enabled: bool
    created_at: datetime
    pending: int = Field(description="Deliveries queued or being retried.")
    delivered: int
    failed: int = Field(description="Deliveries given up after every attempt.")


def _public(hook: Webhook) -> WebhookPublic:
    return WebhookPublic.model_validate(hook.as_dict())


@router.post("", operation_id="create_webhook", response_model=WebhookPublic,
             status_code=status.HTTP_201_CREATED)
async def create_webhook(app: AppDep, who: Admin, body: WebhookCreate) -> WebhookPublic:
    """Add a webhook: alerts raised or decided from now on are queued for it."""
    return _public(await run_in_threadpool(app.webhooks.add, who.context, body.name,
                                           body.url, body.secret, body.attempts))


@router.delete("/{name}", operation_id="delete_webhook", response_model=WebhookPublic)
async def delete_webhook(app: AppDep, who: Admin, name: WebhookName) -> WebhookPublic:
    """Remove a webhook and the deliveries still queued for it."""
    return _public(await run_in_threadpool(app.webhooks.remove, who.context, name))
