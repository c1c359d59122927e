"""Use cases, one module each. They see the ports only."""
