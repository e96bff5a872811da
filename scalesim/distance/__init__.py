"""Invocation distance: how soon each agent will call the LLM again. Pure Python."""
