"""Deployment artefacts rendered from the mesh's configuration (`demigod deploy render ...`)."""
