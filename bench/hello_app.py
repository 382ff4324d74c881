"""The benchmark's peer: a Flask hello-world, served by the same gunicorn configuration."""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello():
    """The least a Flask view can do."""
    return "Hello, World!"


@app.get("/healthz")
def healthz():
    """Lets the benchmark see that the server is up."""
    return "ok"
