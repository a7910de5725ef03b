"""The public API: every name in ``__all__`` exists, is documented, and nothing public is missing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import oid4vci

PUBLIC_PACKAGES = ["oid4vci", "oid4vci.wallet", "oid4vci.issuer", "oid4vci.models"]

# Names the reference API uses; users coming from it must find each one.
REFERENCE_NAMES = {
    "oid4vci": [
        "build_dpop_jwt",
        "request_token",
        "request_credential",
        "push_authorization_request",
        "generate_code_verifier",
        "code_challenge",
        "generate_state",
        "parse_credential_request",
        "verify_dpop_jwt",
        "build_subdomain_issuer_url",
        "issue_batch",
        "Oid4vciClient",
    ],
}


def _modules() -> list[ModuleType]:
    found = [oid4vci]
    for info in pkgutil.walk_packages(oid4vci.__path__, "oid4vci."):
        if ".transports" in info.name or info.name.startswith("oid4vci.cli"):
            continue
        found.append(importlib.import_module(info.name))
    return found


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_all_names_exist_and_are_documented(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert len(names) == len(set(names)), "duplicates in __all__"
    for name in names:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{package}.{name} has no docstring"


def test_reference_api_names_are_importable() -> None:
    for package, names in REFERENCE_NAMES.items():
        module = importlib.import_module(package)
        for name in names:
            assert name in module.__all__, name
    for method in ("parse_offer", "accept_offer", "authorize", "claim"):
        assert inspect.iscoroutinefunction(getattr(oid4vci.Oid4vciClient, method))


def test_every_module_declares_all_and_exports_exist() -> None:
    for module in _modules():
        if module.__name__.rsplit(".", 1)[-1].startswith("_"):
            continue
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} missing"


def test_package_reexports_resolve_to_their_definitions() -> None:
    # ``from oid4vci import X`` is the same object as the submodule's X.
    assert oid4vci.Oid4vciClient is importlib.import_module("oid4vci.wallet").Oid4vciClient
    assert oid4vci.Issuer is importlib.import_module("oid4vci.issuer").Issuer
    assert oid4vci.verify_dpop_jwt is importlib.import_module("oid4vci.dpop").verify_dpop_jwt
