"""Tenants: each one's limits and allowed models, from `security.tenants`."""

from __future__ import annotations

from demigod.config import SecurityConfig, TenantConfig


def tenant_config(security: SecurityConfig, tenant: str) -> TenantConfig:
    """The tenant's settings; tenants not listed get `security.default_tenant`."""
    return security.tenants.get(tenant, security.default_tenant)


def tenant_models(security: SecurityConfig, tenant: str) -> frozenset[str] | None:
    """The models the tenant may use; None: every model."""
    models = tenant_config(security, tenant).models
    return None if models is None else frozenset(models)
