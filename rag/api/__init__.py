"""The HTTP API: its own routes and an OpenAI-compatible /v1, over the one Assistant."""
