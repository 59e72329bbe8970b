"""The WSGI entry point gunicorn imports: one app per worker, model loaded once."""
from service import create_app

app = create_app()
