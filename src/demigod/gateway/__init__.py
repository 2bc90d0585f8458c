"""Plane 1: the OpenAI-compatible front door. Never imports an engine implementation."""
