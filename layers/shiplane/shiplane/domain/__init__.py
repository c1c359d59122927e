"""Pure domain: models and rules. Imports neither boto3 nor os (a test checks)."""
