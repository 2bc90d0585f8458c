"""Security: who is asking (identity), how much they may ask (tenants and quotas), and
what they may send (the prompt screen) and what is recorded (the audit log)."""
