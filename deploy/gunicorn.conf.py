"""gunicorn alternative to `communitybot serve --workers N` (pip install -e '.[gunicorn]').

    gunicorn -c deploy/gunicorn.conf.py bot.app:gunicorn_app

Every worker runs serve's start-up checks (settings, database migrated, Redis, roster); what
fails is logged as one "community-bot cannot start: ..." line and gunicorn stops. Several
workers need PostgreSQL + Redis: without Redis a second worker is refused.
"""

bind = "127.0.0.1:8080"
workers = 4
worker_class = "aiohttp.GunicornWebWorker"
timeout = 30
graceful_timeout = 20
keepalive = 30
accesslog = None  # the app logs JSON lines with request ids itself
