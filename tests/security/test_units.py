"""Pure logic of identity: claims -> tenant and models, and the admission step order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from demigod.api.admission import AdmissionPipeline
from demigod.api.principal import Principal, intersect_models
from demigod.config import SecurityConfig
from demigod.security.authenticate import Authenticator, AuthFailure
from demigod.security.oidc import claim, models_of, scopes_of, tenant_of


def test_tenant_comes_from_the_claim_then_a_scope_then_the_client() -> None:
    scopes = frozenset({"model:tiny", "tenant:acme"})
    assert tenant_of({"tenant": "t", "client_id": "c"}, "tenant", scopes, "tenant:") == "t"
    assert tenant_of({"org": {"id": "deep"}}, "org.id") == "deep"
    assert tenant_of({"client_id": "c"}, "tenant", scopes, "tenant:") == "acme"
    two = frozenset({"tenant:a", "tenant:b"})  # ambiguous roles name no tenant
    assert tenant_of({"client_id": "c"}, "tenant", two, "tenant:") == "c"
    assert tenant_of({"azp": "a", "sub": "s"}, "tenant") == "a"
    assert tenant_of({"sub": "s"}, "tenant") == "s"
    assert tenant_of({"tenant": 5}, "tenant") is None


def test_scopes_and_roles_become_models() -> None:
    assert scopes_of({"scope": "model:a model:b openid"}, "scope") == {
        "model:a",
        "model:b",
        "openid",
    }
    roles = {"realm_access": {"roles": ["model:a", 7, "offline_access"]}}
    assert scopes_of(roles, "realm_access.roles") == {"model:a", "offline_access"}
    assert claim(roles, "realm_access.missing.deeper") is None
    assert models_of(frozenset({"model:a", "openid"}), "model:") == {"a"}
    assert models_of(frozenset({"model:a", "model:*"}), "model:") is None
    assert models_of(frozenset({"openid"}), "model:") is None


model_sets = st.none() | st.frozensets(st.sampled_from("abcde"))


@given(model_sets, model_sets, st.sampled_from("abcde"))
def test_intersected_models_allow_only_what_both_allow(
    first: frozenset[str] | None, second: frozenset[str] | None, model: str
) -> None:
    both = Principal("s", "t", "jwt", intersect_models(first, second))
    allowed = (first is None or model in first) and (second is None or model in second)
    assert both.may_use(model) == allowed


def test_admission_steps_run_in_the_order_asked() -> None:
    async def step(_: object) -> None:
        return None

    pipeline = AdmissionPipeline()
    pipeline.add("auth", step)
    pipeline.add("quota", step)
    pipeline.add("screen", step)
    pipeline.add("early", step, before="quota")
    assert pipeline.step_names == ["auth", "early", "quota", "screen"]
    with pytest.raises(ValueError, match="already"):
        pipeline.add("auth", step)
    with pytest.raises(ValueError, match="no admission step"):
        pipeline.add("late", step, before="missing")


@pytest.mark.parametrize(
    ("bearer", "reason"),
    [
        ("sk-not-ours", "unknown_api_key"),  # another service's key: not "JWTs not accepted"
        ("dgk_0123456789ab_secret", "unknown_api_key"),
        ("a.b.c", "jwt_not_configured"),  # JWT-shaped, and no OIDC issuer is configured
    ],
)
def test_a_refused_bearer_names_the_real_problem(tmp_path: Path, bearer: str, reason: str) -> None:
    authenticator = Authenticator(SecurityConfig(), tmp_path, CollectorRegistry())

    async def refusal() -> AuthFailure:
        try:
            await authenticator.authenticate(f"Bearer {bearer}")
        except AuthFailure as failure:
            return failure
        finally:
            await authenticator.close()
        raise AssertionError("accepted")

    assert asyncio.run(refusal()).reason == reason
