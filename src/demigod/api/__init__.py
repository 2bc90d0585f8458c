"""The request path's contracts, below every package that serves or screens a request.

`errors` (the OpenAI error object every refusal becomes), `admission` (the ordered steps a
request passes before it is routed) and `principal` (who is asking). `demigod.security`
plugs its steps into admission and `demigod.gateway` runs them; neither imports the other
for these.
"""
