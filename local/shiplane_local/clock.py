"""The local cloud's time scale: AWS's delays, shortened by one factor so tests run fast.

Lambda's asynchronous retries (about 1 and 2 minutes), EventBridge's backoff, the age
limits of events and a fault plan's event delays are all stated in AWS's seconds
("cloud seconds"). A `Clock` with `time_scale=0.01` sleeps 0.6 s for Lambda's 60 s
retry delay and counts 0.6 s of waiting as 60 s of event age, so every ratio, and every
decision that depends on one (a retry that would outlive MaximumEventAgeInSeconds), stays
as it is on AWS.
"""

from __future__ import annotations

import time


class Clock:
    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = float(time_scale)

    def real_seconds(self, cloud_seconds: float) -> float:
        return max(0.0, cloud_seconds) * self.time_scale

    def sleep(self, cloud_seconds: float) -> None:
        time.sleep(self.real_seconds(cloud_seconds))

    def now(self) -> float:
        """A monotonic reading in cloud seconds (for ages and deadlines)."""
        return time.monotonic() / self.time_scale
