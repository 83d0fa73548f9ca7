"""Baseline F (bench/baselines/f_asgi.py): the least a Django + Channels project needs."""

import os
import secrets

SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["daphne", "channels"]
ROOT_URLCONF = "bench.baselines.f_asgi"
ASGI_APPLICATION = "bench.baselines.f_asgi.application"
DATABASES = {}
USE_TZ = True
