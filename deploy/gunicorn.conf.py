"""gunicorn alternative to `communitybot serve --workers N` (pip install 'gunicorn>=22,<24').

    gunicorn -c deploy/gunicorn.conf.py bot.app:gunicorn_app
"""

bind = "127.0.0.1:8080"
workers = 4
worker_class = "aiohttp.GunicornWebWorker"
timeout = 30
graceful_timeout = 20
keepalive = 30
accesslog = None  # the app logs JSON lines with request ids itself
