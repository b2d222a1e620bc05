"""FastAPI dependencies: the service, database sessions and scoped bearer-key auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service import auth
from judge_service.service import Service
from judge_service.store import repo

bearer = HTTPBearer(auto_error=False)


def get_context(request: Request) -> Service:
    """The process-wide service built at start-up."""
    ctx: Service = request.app.state.ctx
    return ctx


Context = Annotated[Service, Depends(get_context)]


async def get_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    """One database session per request."""
    async with ctx.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


@dataclass(frozen=True)
class Caller:
    """The authenticated key behind a request."""

    key_id: int
    name: str
    scopes: list[str]


def require(scope: str) -> Callable[..., Awaitable[Caller]]:
    """Dependency: a valid, unrevoked key with `scope` (401 without a key, 403 without the scope)."""

    async def dependency(
        ctx: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        async with ctx.sessions() as session:
            row = await repo.find_api_key(session, credentials.credentials)
        if row is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "unknown or revoked key", headers={"WWW-Authenticate": "Bearer"}
            )
        scopes = row.scopes.split(",")
        if not auth.has_scope(scopes, scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks the {scope!r} scope")
        return Caller(row.id, row.name, scopes)

    return dependency


async def optional_caller(
    ctx: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller | None:
    """The caller when a valid key is sent, else None (never 401): for endpoints open to probes."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    async with ctx.sessions() as session:
        row = await repo.find_api_key(session, credentials.credentials)
    return None if row is None else Caller(row.id, row.name, row.scopes.split(","))


MaybeCaller = Annotated[Caller | None, Depends(optional_caller)]
