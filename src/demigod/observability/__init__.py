"""Metrics and logs: what operators watch."""
