from renkei.cli import app

app(prog_name="renkei")
