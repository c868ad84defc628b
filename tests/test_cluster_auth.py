"""What bench says when a cluster refuses a client: Ray's own texts for a missing token, a
token Ray could not find and a wrong token, with and without RAY_AUTH_MODE=token (the real
refusals are exercised on a running cluster in test_cluster.py)."""

import pytest

from bench.cluster import auth_problem

MISSING = "Authentication required: Unauthorized: Missing authentication token"
NOT_FOUND = "Token authentication is enabled but Ray couldn't find an authentication token."
INVALID = "Authentication failed: Forbidden: Invalid authentication token"
CORE = "Failed to get cluster ID from GCS server: Unauthenticated: RPC error: InvalidAuthToken"


@pytest.mark.parametrize("text", [MISSING, INVALID, CORE])
def test_without_token_mode_the_fix_is_to_set_it(monkeypatch, text):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    problem = auth_problem(text)
    assert "sent no token" in problem and "set RAY_AUTH_MODE=token" in problem


@pytest.mark.parametrize(
    "text, says",
    [
        (NOT_FOUND, "RAY_AUTH_MODE=token is set but no token was found"),
        (INVALID, "the cluster rejected the authentication token"),
        (CORE, "refused this client's token"),
    ],
)
def test_with_token_mode_the_token_itself_is_named(monkeypatch, text, says):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    problem = auth_problem(text)
    assert says in problem and "RAY_AUTH_TOKEN" in problem


def test_other_failures_are_not_called_authentication():
    assert auth_problem("Connection refused") is None
