"""The production mode (DJANGO_ENV=production) refuses to start without any one of its
secrets, naming it, and passes ``check --deploy`` with no warning once they are all set
(issue 3, item 2). Each case is a fresh interpreter: settings are read once per process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from crypto.keyring import generate_master_keys
from crypto.signing import generate_sealing_keys

ROOT = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup()"


def production_env(tmp_path, **overrides) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PALABRE_MASTER_KEYS": generate_master_keys(),
        "PALABRE_SEALING_KEYS": generate_sealing_keys(),
        "ALLOWED_HOSTS": "palabre.example",
        "DATABASE_URL": "postgres://palabre:palabre@127.0.0.1:5432/palabre",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "PALABRE_DATA_DIR": str(tmp_path / "data"),
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def embedded_env(tmp_path, **overrides) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PALABRE_DATA_DIR": str(tmp_path / "data"),
        **overrides,
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


SECRETS = [
    "SECRET_KEY",
    "PALABRE_MASTER_KEYS",
    "PALABRE_SEALING_KEYS",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
]


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize("absent", ["unset", "empty"])
def test_production_refuses_to_start_without_each_secret(tmp_path, name, absent):
    env = production_env(tmp_path, **{name: None if absent == "unset" else ""})
    result = run(["-c", SETUP], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.strip().splitlines()[-1]
    # No embedded default was generated for production to inherit.
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_production_refuses_debug(tmp_path):
    result = run(["-c", SETUP], production_env(tmp_path, DEBUG="true"))
    assert result.returncode != 0
    assert "DEBUG" in result.stderr.strip().splitlines()[-1]


def test_production_starts_with_every_secret(tmp_path):
    result = run(["-c", SETUP + "; from django.conf import settings; print(settings.DEBUG, settings.SESSION_COOKIE_SECURE)"], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("production", [True, False])
@pytest.mark.parametrize("value", ["$" + secrets.token_urlsafe(50), "$HOME"])
def test_a_secret_is_read_exactly_as_set(tmp_path, production, value):
    """One key in 50 from Django's get_random_secret_key starts with "$", which
    django-environ would read as the name of another variable: production refused to
    start with such a key, and "$HOME" would have become the home folder's path."""
    code = SETUP + "; from django.conf import settings; print(settings.SECRET_KEY)"
    env = (production_env if production else embedded_env)(tmp_path, SECRET_KEY=value)
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == value


def test_check_deploy_is_clean_in_production(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_embedded_default_needs_no_variable(tmp_path):
    env = embedded_env(tmp_path)
    code = (
        SETUP
        + "; from django.conf import settings as s"
        + "; print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], bool(s.SECRET_KEY))"
    )
    first = run(["-c", code], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [
        "django.db.backends.sqlite3",
        "project.layers.InMemoryChannelLayer",
        "True",
    ]
    secret = (tmp_path / "data" / "secret_key").read_text()
    # Generated once, then kept.
    assert run(["-c", code], env).returncode == 0
    assert (tmp_path / "data" / "secret_key").read_text() == secret
    assert oct((tmp_path / "data" / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_redis_url_selects_the_redis_layer(tmp_path):
    env = embedded_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0", DATABASE_URL="postgres://u:p@db.example:5432/x")
    code = SETUP + "; from django.conf import settings as s; print(s.CHANNEL_LAYERS['default']['BACKEND'], s.DATABASES['default']['ENGINE'])"
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["channels_redis.pubsub.RedisPubSubChannelLayer", "django.db.backends.postgresql"]


@pytest.mark.parametrize(
    ("production", "overrides", "pinned"),
    [(False, {}, "True"), (True, {}, "False"), (True, {"PALABRE_PIN_CPU": "true"}, "True")],
)
def test_daphne_is_pinned_to_a_cpu_by_default_only_in_the_embedded_default(tmp_path, production, overrides, pinned):
    """One daphne per container, each with its own /tmp, would all take the same CPU
    (project/runtime.py): production pins only when told that its processes share one."""
    env = (production_env if production else embedded_env)(tmp_path, **overrides)
    result = run(["-c", SETUP + "; from django.conf import settings; print(settings.PALABRE_PIN_CPU)"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [pinned]
