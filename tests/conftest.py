"""Shared test setup: hypothesis profiles (``dev`` 100 examples, ``ci`` 1,000), the test Redis."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (``LICTOR_TEST_REDIS_URL``); skipped when unreachable, failed under CI=true.

    As with PostgreSQL, CI must never pass by silently testing less.
    """
    import redis  # imported here: only sessions that use Redis pay for it

    url = os.environ.get("LICTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis not reachable at {url}; set LICTOR_TEST_REDIS_URL ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: Redis tests are mandatory)", pytrace=False)
        pytest.skip(reason)
    finally:
        client.close()
    return url
