"""Windmill script: a new release tag goes out to one environment: render the manifests
for it from deploy/environments/ENV/mesh.yaml, apply them, smoke-test the gateway."""
