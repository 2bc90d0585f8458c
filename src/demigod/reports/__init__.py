"""Documents built from a running mesh, the recorded benchmarks and the compliance facts:
the one-pager a funding application carries (`demigod report one-pager`)."""
