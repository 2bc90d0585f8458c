from demigod.cli import app

app()
