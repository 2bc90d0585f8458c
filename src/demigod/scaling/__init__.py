"""Scaling on one host: the Kubernetes HPA algorithm as a pure function (`hpa`), what it
reads from the workers (`signals`), the worker processes it starts and stops (`replicas`)
and the loop that ties them together (`autoscaler`)."""
