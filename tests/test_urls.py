"""URL rules: well-known locations, https policy, htu normalization."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oid4vci.errors import InsecureUrlError
from oid4vci.urls import (
    append_well_known,
    insert_well_known,
    is_loopback_url,
    normalize_htu,
    origin_of,
    require_secure_url,
)

ISSUER = "openid-credential-issuer"


# --- well-known (vectors.md §5.2) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "draft_url", "v1_url"),
    [
        (
            "https://issuer.example.com",
            "https://issuer.example.com/.well-known/openid-credential-issuer",
            "https://issuer.example.com/.well-known/openid-credential-issuer",
        ),
        (
            "https://issuer.example.com/tenant",
            "https://issuer.example.com/tenant/.well-known/openid-credential-issuer",
            "https://issuer.example.com/.well-known/openid-credential-issuer/tenant",
        ),
        (
            "https://tenant.issuer.example.com",
            "https://tenant.issuer.example.com/.well-known/openid-credential-issuer",
            "https://tenant.issuer.example.com/.well-known/openid-credential-issuer",
        ),
    ],
)
def test_issuer_metadata_url_table(identifier: str, draft_url: str, v1_url: str) -> None:
    assert append_well_known(identifier, ISSUER) == draft_url
    assert insert_well_known(identifier, ISSUER) == v1_url
    # A terminating slash does not change the result.
    assert append_well_known(identifier + "/", ISSUER) == draft_url
    assert insert_well_known(identifier + "/", ISSUER) == v1_url


def test_jwt_vc_issuer_and_as_metadata() -> None:
    assert (
        insert_well_known("https://example.com/tenant/1234", "jwt-vc-issuer")
        == "https://example.com/.well-known/jwt-vc-issuer/tenant/1234"
    )
    assert (
        insert_well_known("https://as.example.com/service", "oauth-authorization-server")
        == "https://as.example.com/.well-known/oauth-authorization-server/service"
    )
    assert (
        insert_well_known("https://as.example.com", "oauth-authorization-server")
        == "https://as.example.com/.well-known/oauth-authorization-server"
    )


def test_well_known_keeps_port() -> None:
    assert (
        insert_well_known("http://127.0.0.1:8080/t", ISSUER)
        == "http://127.0.0.1:8080/.well-known/openid-credential-issuer/t"
    )
    assert (
        append_well_known("http://127.0.0.1:8080/t", ISSUER)
        == "http://127.0.0.1:8080/t/.well-known/openid-credential-issuer"
    )


# --- https policy ----------------------------------------------------------------------------


def test_https_is_accepted() -> None:
    url = "https://issuer.example.com/path?x=1"
    assert require_secure_url(url) == url
    assert require_secure_url("https://127.0.0.1:8443/") == "https://127.0.0.1:8443/"


@pytest.mark.parametrize(
    "url",
    ["http://issuer.example.com", "http://10.0.0.1/", "http://localhost.evil.com/", "ftp://x/"],
)
def test_http_to_non_loopback_refused(url: str) -> None:
    with pytest.raises(InsecureUrlError, match="https"):
        require_secure_url(url, allow_insecure_loopback=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/x", "http://localhost/", "http://[::1]:9/", "http://127.1.2.3/"]
)
def test_loopback_only_with_option(url: str) -> None:
    with pytest.raises(InsecureUrlError):
        require_secure_url(url)
    assert require_secure_url(url, allow_insecure_loopback=True) == url
    assert is_loopback_url(url)


def test_is_loopback_url() -> None:
    assert not is_loopback_url("https://example.com")
    assert not is_loopback_url("https://128.0.0.1")
    assert not is_loopback_url("not a url")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:pass@issuer.example.com/", "user info"),
        ("https://user@issuer.example.com/", "user info"),
        ("https://issuer.example.com/#frag", "fragment"),
        ("https:///path", "no host"),
        ("issuer.example.com", "no host"),
        ("https://issuer.example.com:99999/", "not a valid URL"),
        ("https://[::1/", "not a valid URL"),
    ],
)
def test_require_secure_url_refusals(url: str, reason: str) -> None:
    with pytest.raises(InsecureUrlError, match=reason):
        require_secure_url(url, allow_insecure_loopback=True, what="credential_issuer")
    with pytest.raises(InsecureUrlError, match="credential_issuer"):
        require_secure_url(url, what="credential_issuer")


def test_userinfo_on_loopback_refused_too() -> None:
    with pytest.raises(InsecureUrlError, match="user info"):
        require_secure_url("http://a:b@127.0.0.1/", allow_insecure_loopback=True)


# --- origins and htu -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Issuer.Example.com/a/b?c", "https://issuer.example.com"),
        ("https://issuer.example.com:443/", "https://issuer.example.com"),
        ("https://issuer.example.com:8443/", "https://issuer.example.com:8443"),
        ("http://localhost:80/", "http://localhost"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://server.example.com/token", "https://server.example.com/token"),
        ("https://server.example.com/token?x=1", "https://server.example.com/token"),
        ("https://server.example.com/token#frag", "https://server.example.com/token"),
        ("HTTPS://SERVER.Example.COM/token", "https://server.example.com/token"),
        ("https://server.example.com:443/token", "https://server.example.com/token"),
        ("http://server.example.com:80/token", "http://server.example.com/token"),
        ("https://server.example.com:8443/token", "https://server.example.com:8443/token"),
        ("https://server.example.com", "https://server.example.com/"),
        ("https://server.example.com/a/./b/../token", "https://server.example.com/a/token"),
        ("https://server.example.com/%7etoken", "https://server.example.com/%7Etoken"),
        ("https://user@server.example.com/t", "https://server.example.com/t"),
    ],
)
def test_normalize_htu(url: str, normalized: str) -> None:
    assert normalize_htu(url) == normalized


def test_normalize_htu_keeps_meaningful_differences() -> None:
    base = normalize_htu("https://server.example.com/token")
    assert normalize_htu("http://server.example.com/token") != base
    assert normalize_htu("https://server.example.com/Token") != base  # path is case-sensitive
    assert normalize_htu("https://server.example.com/token/") != base
    assert normalize_htu("https://server.example.com:444/token") != base
    assert normalize_htu("https://other.example.com/token") != base


_segment = st.sampled_from(["a", "B", "..", ".", "", "%2f", "%7E", "x y", "t~"])
_urls = st.builds(
    lambda scheme, host, port, segments, query: (
        f"{scheme}://{host}{port}/{'/'.join(segments)}{query}"
    ),
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["example.com", "EXAMPLE.com", "127.0.0.1", "[::1]"]),
    st.sampled_from(["", ":80", ":443", ":8443"]),
    st.lists(_segment, max_size=6),
    st.sampled_from(["", "?q=1", "#f", "?a#b"]),
)


@given(_urls)
def test_normalize_htu_is_idempotent(url: str) -> None:
    once = normalize_htu(url)
    assert normalize_htu(once) == once
    assert "?" not in once
    assert "#" not in once
    assert once == once.split("://", 1)[0].lower() + "://" + once.split("://", 1)[1]
