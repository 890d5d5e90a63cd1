"""429 when a token exceeds its rate: a fixed one-minute window per token, counted in the portal's Redis,
so every web process shares one count."""

from __future__ import annotations

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from api.models import ApiToken

WINDOW_S = 60


class TokenRateThrottle(BaseThrottle):
    """DNSPORTAL_API_TOKEN_RATE requests per token per minute; the browser's session is not limited."""

    def allow_request(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        from dnsportal.queue import rq_connection

        now = time.time()
        window = int(now // WINDOW_S)
        key = f"dnsportal:api-rate:{token.id}:{window}"
        redis = rq_connection()
        pipe = redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_S * 2)
        count, _ = pipe.execute()
        self._wait = (window + 1) * WINDOW_S - now
        return int(count) <= settings.API_TOKEN_RATE

    def wait(self) -> float | None:
        return max(1.0, self._wait)
