"""Which AWS error codes mean "slow down": every adapter turns them into ThrottledError,
which the state machine retries with backoff. One list, so a service whose throttle has
an unusual code (DynamoDB's ProvisionedThroughputExceededException, STS's Throttling,
Step Functions' ThrottlingException) is never taken for a terminal failure."""

from __future__ import annotations

from botocore.exceptions import ClientError

# botocore's own list (botocore.retries.standard.ThrottledRetryableChecker): the codes its
# standard retry mode treats as throttling, for every service.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


def is_throttling(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code", "") in THROTTLING_CODES
