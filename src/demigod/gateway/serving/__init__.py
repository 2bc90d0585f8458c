"""One serving class per endpoint family (vLLM's `serving_*` shape): explicit constructors,
built once at startup (gateway.services), typed protocol objects out. The routes
(gateway.routes) call them and turn what they return into HTTP."""
