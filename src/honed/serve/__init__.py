"""The HTTP side of honed: an OpenAI-compatible endpoint for the models honed runs."""

from honed.serve.openai_api import create_app

__all__ = ["create_app"]
