"""The HTTP side of honed: an OpenAI-compatible endpoint for the models honed runs, log and feedback
ingestion for applications in any language, and the API tokens that guard both."""

from honed.serve.openai_api import create_app

__all__ = ["create_app"]
