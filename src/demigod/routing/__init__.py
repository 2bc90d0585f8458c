"""Which model answers a request: the classifier, the routing policy and the versions of a
model (stable, candidate). Pure decisions over names, with no HTTP: the gateway, the WAF
(which shares the classifier's features) and the canary build on them."""
