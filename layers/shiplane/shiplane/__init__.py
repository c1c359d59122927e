"""Shiplane: the shared code of the Lambda functions (the `shiplane` layer)."""
