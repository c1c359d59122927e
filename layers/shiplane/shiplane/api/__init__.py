"""The REST API (API Gateway → the api function): Powertools' REST resolver with
validation over the routers in `routes/`, and the pieces they share. See docs/api.md."""
