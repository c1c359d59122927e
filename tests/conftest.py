import os

# No test may reach a real AWS account: fake credentials before anything imports boto3.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ShiplaneTest")
os.environ.setdefault("POWERTOOLS_DEV", "false")


def pytest_sessionstart(session):  # type: ignore[no-untyped-def]
    """A new run: forget the IAM decisions saved by the last one (the controller only,
    before any xdist worker saves)."""
    if hasattr(session.config, "workerinput"):
        return
    try:
        from shiplane_local.iam.usage import clear
    except ImportError:
        return
    clear()


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    """Save this worker's IAM decisions for `python -m shiplane_local.iam report`."""
    try:
        from shiplane_local.iam.usage import save
    except ImportError:  # the local cloud is not installed: nothing to save
        return
    save()
