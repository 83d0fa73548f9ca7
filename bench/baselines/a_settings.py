"""Baseline A: the Channels tutorial chat (docs "Tutorial Part 2/3"), nothing else.

A separate, tiny Django project so that nothing of Palabre runs in it. One deviation from
the tutorial, as in the anchors (BENCHMARKS-ANCHORS.md §0): the Redis connection gets
``socket_timeout=None``, because redis-py 8's default 5 s equals the layer's 5 s BZPOPMIN
and closes idle consumers with 1011.
"""

import os
import secrets

# No secret in the repository, not even for a throwaway benchmark app.
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
ROOT_URLCONF = "bench.baselines.a_asgi"
ASGI_APPLICATION = "bench.baselines.a_asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_A_DB", "/tmp/palabre-bench-baseline-a.sqlite3"),
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": None}],
            "prefix": os.environ.get("BENCH_A_PREFIX", "bench-a"),
        },
    }
}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
