"""boto3 implementations of the ports. Clients are created lazily and can be injected."""
