"""The WSGI entry point for gunicorn: ``gunicorn -c config/gunicorn.conf.py wsgi:app``."""
from samizdat.app import create_app

app = create_app()
