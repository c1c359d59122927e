"""Per-principal credentials inside one process: a request signed with the local cloud's
default credentials while a thread runs an `Invocation` is signed as that invocation's role.

On AWS each function gets its execution role's session credentials from its sandbox. Here
every handler shares one process, its environment and the layer's cached clients, so the
credentials are chosen when a request is signed, not when a client is made: botocore's
request signer asks which invocation this thread runs and, if the request carries the
default ("testing") keys, signs it with a session of the invocation's role instead. Keys
that are not the default ones (a target's assumed deploy role) are left alone: they
already name who is calling. Sessions come from moto's STS (so the server maps the access
key back to the role exactly as it does for an `AssumeRole` made over the wire), with the
function's name as the session name, as Lambda does.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.credentials import ReadOnlyCredentials
from botocore.signers import RequestSigner

from .._patching import Patches
from ..invocation import current

# The local cloud's own keys (the account's administrator) and the keys moto's Step
# Functions interpreter signs with: inside an invocation they stand for its role.
DEFAULT_KEYS = frozenset({"testing", "ak"})


class RoleSessions:
    """Session credentials per (role, session name), minted once from moto's STS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str], ReadOnlyCredentials] = {}

    def credentials(self, role_arn: str, session_name: str) -> ReadOnlyCredentials:
        key = (role_arn, session_name)
        with self._lock:
            found = self._sessions.get(key)
            if found is not None and _still_known(str(found.access_key), role_arn):
                return found
            found = _mint(role_arn, session_name)
            self._sessions[key] = found
            return found

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()


def _account_of(role_arn: str) -> str:
    return role_arn.split(":")[4]


def _still_known(access_key: str, role_arn: str) -> bool:
    """False after moto was reset (a new LocalCloud): the session must be minted again."""
    from moto.sts.models import sts_backends

    backend = sts_backends[_account_of(role_arn)]["aws"]
    return backend.get_assumed_role_from_access_key(access_key) is not None


def _mint(role_arn: str, session_name: str) -> ReadOnlyCredentials:
    from moto.sts.models import sts_backends

    # The service (Lambda, Step Functions, Scheduler) assumes the role under its own trust,
    # not the caller's: no trust evaluation here, as none is made on the caller's behalf.
    session = sts_backends[_account_of(role_arn)]["aws"].assume_role(
        region_name="us-east-1",
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy=None,  # type: ignore[arg-type]  # AWS's default: none
        duration=3600,
        external_id=None,  # type: ignore[arg-type]
    )
    return ReadOnlyCredentials(
        session.access_key_id, session.secret_access_key, session.session_token
    )


SESSIONS = RoleSessions()


def session_name_for(function_name: str) -> str:
    """Role session names allow [\\w+=,.@-]; a service's marker such as `states:x` does not."""
    return "".join(c if c.isalnum() or c in "+=,.@-_" else "-" for c in function_name)[:64]


class SigningAsInvocationRole:
    """Patch botocore's signer to sign default-key requests as the invocation's role."""

    def __init__(self) -> None:
        self._patches = Patches()

    def install(self) -> None:
        SESSIONS.clear()
        original = RequestSigner.get_auth_instance

        def get_auth_instance(self: RequestSigner, *args: Any, **kwargs: Any) -> Any:
            # botocore makes one signer object per request (SigV4, or the CRT's when
            # awscrt is installed, as with boto3[crt]): replacing its credentials changes
            # this request only.
            auth = original(self, *args, **kwargs)
            invocation = current()
            credentials = getattr(auth, "credentials", None)
            if (
                invocation is not None
                and invocation.role_arn
                and credentials is not None
                and credentials.access_key in DEFAULT_KEYS
            ):
                auth.credentials = SESSIONS.credentials(
                    invocation.role_arn, session_name_for(invocation.function_name)
                )
            return auth

        self._patches.replace(RequestSigner, "get_auth_instance", get_auth_instance)
        self._patches.replace(RequestSigner, "get_auth", get_auth_instance)

    def uninstall(self) -> None:
        self._patches.undo()
        SESSIONS.clear()
