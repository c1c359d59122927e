"""IAM on the local cloud: identity-based policy evaluation against moto's IAM roles."""

from .policy import Evaluation, Grant, evaluate
from .roles import USAGE, Denial, authorize, role_documents, role_of

__all__ = [
    "USAGE",
    "Denial",
    "Evaluation",
    "Grant",
    "authorize",
    "evaluate",
    "role_documents",
    "role_of",
]
