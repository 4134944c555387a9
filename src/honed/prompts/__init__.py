"""Prompts: versioned templates (sandboxed Jinja2), labels, chains and structured output."""
