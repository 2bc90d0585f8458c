"""Canary rollouts: the store of versions and weights, the pure decision, the controller."""
