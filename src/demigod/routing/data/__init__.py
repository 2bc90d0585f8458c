"""The labelled prompts the request classifier trains on."""
