"""Measuring a served model: the outcome type the registry records, and the Hemlock
regression suite (cases sent through the OpenAI endpoint, replies checked) that the
lifecycle's validation, the canary and the deep probe all run."""
