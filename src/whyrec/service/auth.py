"""Access control: a service key covering everyone, and signed per-user tokens covering one user.

* The **service key** (``WHYREC_API_KEY`` or ``--api-key-file``), sent as ``Authorization: Bearer
  KEY``, covers every user and the admin routes.
* A **user token**, issued with the service key by ``POST /api/users/{user_id}/token``, covers that
  user alone. It is ``wr1.<id>.<expires>.<user>.<signature>``: an HMAC-SHA256 signature (with a key
  derived from the service key) over the rest, so a forged or altered token fails without a
  database read; the store then confirms it was not revoked (it keeps a digest of each valid
  token, never the token). Revoking (or forgetting the user) deletes that digest.
* Without a service key the service is **open** (allowed on a loopback host only, see
  :func:`whyrec.service.server.serve`): every request is covered.

Routes declare what they need as a FastAPI dependency, so any router can adopt it::

    @router.get("/users/{user_id}/things", dependencies=[Depends(require_user)])
    @router.post("/items", dependencies=[Depends(require_admin)])
    def route(..., credential: Credential = Depends(require_user)) -> ...  # to use it

The dependencies find the :class:`Authority` on ``request.app.state.authority`` (set by
:func:`whyrec.service.app.create_app`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from whyrec.events import MAX_ID_LENGTH, EventStore

TOKEN_PREFIX = "wr1"
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="the service key (every user, admin routes) or a user token from "
    "POST /api/users/{user_id}/token (that user alone)",
)


@dataclass(frozen=True)
class Credential:
    """Who is asking: the service key, one user's token, or anyone (an open service)."""

    kind: Literal["service", "user", "open"]
    user_id: str | None = None
    key: str = ""  # what rate limits count against

    def covers(self, user_id: str) -> bool:
        return self.kind != "user" or self.user_id == user_id

    @property
    def admin(self) -> bool:
        return self.kind != "user"


class Authority:
    """Checks credentials and issues and revokes user tokens. ``api_key=None``: an open service."""

    def __init__(self, api_key: str | None, store: EventStore, token_ttl_seconds: float = 86_400) -> None:
        self.open = api_key is None
        self._key = (api_key or "").encode("utf-8")
        self._signing = hmac.new(self._key, b"whyrec user tokens v1", hashlib.sha256).digest()
        self.store = store
        self.token_ttl_seconds = token_ttl_seconds

    def authenticate(self, secret: str | None, client: str = "") -> Credential | None:
        """The credential ``secret`` stands for, or ``None`` if it stands for nothing."""
        if self.open:
            return Credential("open", key=f"client:{client}")
        if not secret:
            return None
        if hmac.compare_digest(secret.encode("utf-8"), self._key):
            return Credential("service", key="service")
        parsed = self._verify_signature(secret)
        if parsed is None:
            return None
        token_id, expires, user_id = parsed
        if expires <= time.time() or not self.store.token_valid(token_id, secret):
            return None
        return Credential("user", user_id=user_id, key=f"token:{token_id}")

    def issue(self, user_id: str, ttl_seconds: float | None = None) -> tuple[str, float]:
        """A new token for ``user_id`` and when it expires (unix seconds)."""
        expires = int(time.time() + (ttl_seconds or self.token_ttl_seconds))
        token_id = secrets.token_hex(12)
        user = base64.urlsafe_b64encode(user_id.encode("utf-8")).decode("ascii").rstrip("=")
        body = f"{TOKEN_PREFIX}.{token_id}.{expires}.{user}"
        token = f"{body}.{self._sign(body)}"
        self.store.add_token(token_id, user_id, token, float(expires))
        return token, float(expires)

    def revoke(self, user_id: str) -> int:
        return self.store.revoke_tokens(user_id)

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._signing, body.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def _verify_signature(self, token: str) -> tuple[str, float, str] | None:
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != TOKEN_PREFIX or not parts[2].isdigit():
            return None
        body, signature = token.rsplit(".", 1)
        if not body.isascii() or not hmac.compare_digest(signature.encode("ascii", "replace"),
                                                         self._sign(body).encode("ascii")):  # fmt: skip
            return None
        try:
            user_id = base64.urlsafe_b64decode(parts[3] + "=" * (-len(parts[3]) % 4)).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        return parts[1], float(parts[2]), user_id


# -- dependencies ---------------------------------------------------------------------------------
def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def get_authority(request: Request) -> Authority:
    return request.app.state.authority  # type: ignore[no-any-return]


def credential(
    request: Request, sent: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Credential:
    """Any valid credential (401 otherwise)."""
    authority = get_authority(request)
    client = request.client.host if request.client else ""
    secret = sent.credentials if sent is not None else None
    found = authority.authenticate(secret, client)
    if found is None:
        if secret is None:
            raise _unauthorized("a credential is required: send 'Authorization: Bearer <key or token>'")
        raise _unauthorized("the credential is not valid (unknown, expired or revoked)")
    return found


def require_user(
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    found: Annotated[Credential, Depends(credential)],
) -> Credential:
    """A credential covering the path's ``user_id`` (401 without one, 403 for another user's)."""
    if not found.covers(user_id):
        raise HTTPException(status_code=403, detail=f"this token does not cover user {user_id!r}")
    return found


def require_admin(found: Annotated[Credential, Depends(credential)]) -> Credential:
    """The service key (or an open service): 403 for a user token."""
    if not found.admin:
        raise HTTPException(status_code=403, detail="this route needs the service key, not a user token")
    return found


AUTH_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "no credential, or one that is not valid"},
    403: {"description": "a credential that does not cover this user or route"},
}
