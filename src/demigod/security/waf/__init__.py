"""The prompt-injection screen (the WAF): normalisation, versioned rules and a small
learned model, applied on the gateway's request path (docs/security-waf.md)."""

from demigod.security.waf.screen import PromptScreen, Segment, Verdict

__all__ = ["PromptScreen", "Segment", "Verdict"]
