"""The product's settings plus a fault: every request under CONTRACT_INJECT_500 raises, so the
contract check can show that a 500 turns it red. Used only by tests/contract/run_schemathesis.py."""

import os

from stateset.settings import *  # noqa: F403
from stateset.settings import MIDDLEWARE

CONTRACT_INJECT_500 = os.environ["CONTRACT_INJECT_500"]
MIDDLEWARE = [*MIDDLEWARE, "tests.contract.settings_inject.RaiseOnPathMiddleware"]


class InjectedFault(Exception):
    pass


class RaiseOnPathMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(CONTRACT_INJECT_500):
            raise InjectedFault(f"injected by CONTRACT_INJECT_500 on {request.path}")
        return self.get_response(request)
