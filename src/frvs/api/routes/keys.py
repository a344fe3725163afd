"""/v1/keys (admin): create, list, show, change and revoke API keys (device keys with
the cameras they are bound to); /v1/me: who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from frvs.api.auth import Admin, AnyRole
from frvs.api.deps import AppDep
from frvs.api.pagination import CursorQuery, LimitQuery, Page, page_by_key
from frvs.oversight.models import ApiKey, Role

router = APIRouter(prefix="/v1", tags=["keys"])

KeyId = Annotated[str, Path(description="The key id (k_...), never the token.",
                            max_length=32, examples=["k_3f9a0c1d2e4b"])]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "front desk kiosk", "role": "operator"}]})

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    role: Role
    holder: str | None = Field(None, min_length=1, max_length=200, description=(
        "The person the key belongs to (default: the name). Fixed for the key's life: the "
        "two-person rule counts holders, so every key of one person needs the same holder."))
    cameras: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=100, description=(
            "Device keys only: the registered cameras the edge node may report sightings "
            "for; a report for any other camera is refused (403)."))


class KeyUpdate(BaseModel):
    """What may change on a key: its name and, for a device key, the cameras it reports
    for. Role, token and holder never change (make a new key)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "front desk kiosk (hall B)"}, {"cameras": ["gate", "stage"]}]})

    name: str | None = Field(None, min_length=1, max_length=200)
    cameras: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=100, description="Device keys: the new binding, replacing the "
        "old ([]: no camera).")


class KeyPublic(BaseModel):
    key_id: str = Field(examples=["k_3f9a0c1d2e4b"])
    name: str
    role: Role
    created_at: datetime
    created_by: str = Field(examples=["key:k_1688e10d1728"])
    revoked_at: datetime | None
    holder: str = Field(description="The person the key belongs to (never changes).")
    cameras: list[str] = Field(description="Device keys: the cameras it may report for.")


class KeyIssued(KeyPublic):
    token: str = Field(description="The secret, shown this once; FRVS keeps only its hash.",
                       examples=["frvs_4q3...redacted"])


def _public(key: ApiKey) -> KeyPublic:
    return KeyPublic.model_validate(key.as_dict())


@router.get("/keys", operation_id="list_keys", response_model=Page[KeyPublic])
async def list_keys(app: AppDep, _: Admin, cursor: CursorQuery = None,
                    limit: LimitQuery = 100) -> Page[KeyPublic]:
    """Every key, active and revoked (never the tokens)."""
    keys = await run_in_threadpool(app.oversight.keys.all)
    chunk, next_cursor = page_by_key(keys, lambda k: k.key_id, cursor, limit)
    return Page[KeyPublic](items=[_public(k) for k in chunk], next_cursor=next_cursor)


@router.post("/keys", operation_id="create_key", response_model=KeyIssued,
             status_code=status.HTTP_201_CREATED)
async def create_key(app: AppDep, who: Admin, body: KeyCreate) -> KeyIssued:
    """Create a key with one role (audited); the token is in this response only."""
    issued = await run_in_threadpool(app.oversight.keys.create, who.context, body.role,
                                     body.name, body.holder, body.cameras)
    return KeyIssued.model_validate(issued.key.as_dict() | {"token": issued.token})


@router.get("/keys/{key_id}", operation_id="get_key", response_model=KeyPublic)
async def get_key(app: AppDep, _: Admin, key_id: KeyId) -> KeyPublic:
    """One key."""
    return _public(await run_in_threadpool(app.oversight.keys.get, key_id))


@router.patch("/keys/{key_id}", operation_id="update_key", response_model=KeyPublic)
async def update_key(app: AppDep, who: Admin, key_id: KeyId, body: KeyUpdate) -> KeyPublic:
    """Rename a key or change the cameras a device key is bound to (audited with both
    before and after)."""
    return _public(await run_in_threadpool(lambda: app.oversight.keys.update(
        who.context, key_id, name=body.name, cameras=body.cameras)))


@router.delete("/keys/{key_id}", operation_id="revoke_key", response_model=KeyPublic)
async def revoke_key(app: AppDep, who: Admin, key_id: KeyId) -> KeyPublic:
    """Revoke a key (audited); it answers 401 from the next request on."""
    return _public(await run_in_threadpool(app.oversight.keys.revoke, who.context, key_id))


@router.get("/me", operation_id="whoami", response_model=KeyPublic, tags=["service"])
async def whoami(who: AnyRole) -> KeyPublic:
    """The calling key: id, name and role (any valid key)."""
    return _public(who.key)
