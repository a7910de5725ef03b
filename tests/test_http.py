"""HTTP values: Headers, HttpRequest, HttpResponse."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.errors import ArgumentTypeError, UsageError, WireFormatError
from oid4vci.http import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    Headers,
    HttpRequest,
    HttpResponse,
    Transport,
)

# --- Headers ---------------------------------------------------------------------------------


def test_headers_case_insensitive_lookup() -> None:
    headers = Headers({"Content-Type": "application/json", "DPoP-Nonce": "n"})
    assert headers.get("content-type") == "application/json"
    assert headers.get("CONTENT-TYPE") == "application/json"
    assert headers.get("dpop-nonce") == "n"
    assert headers.get("missing") is None
    assert headers.get("missing", "dflt") == "dflt"
    assert "content-TYPE" in headers
    assert "missing" not in headers
    assert 1 not in headers  # type: ignore[comparison-overlap]
    assert headers["dpop-NONCE"] == "n"
    with pytest.raises(KeyError):
        headers["missing"]
    assert dict(headers) == {"Content-Type": "application/json", "DPoP-Nonce": "n"}


def test_headers_keep_order_and_repeats() -> None:
    headers = Headers([("A", "1"), ("b", "2"), ("a", "3")])
    assert headers.get("a") == "1"
    assert headers.get_all("A") == ["1", "3"]
    assert headers.multi_items() == (("A", "1"), ("b", "2"), ("a", "3"))
    # a Mapping: each name once (first spelling), the first value
    assert list(headers) == ["A", "b"]
    assert len(headers) == 2
    assert dict(headers.items()) == {"A": "1", "b": "2"}
    assert headers.to_dict() == {"A": "1, 3", "b": "2"}
    assert Headers([("X", "1"), ("X", "2")]).to_dict() == {"X": "1, 2"}


def test_headers_never_join_set_cookie() -> None:
    one = Headers([("Set-Cookie", "a=1; Path=/"), ("Vary", "Accept")])
    assert one.to_dict() == {"Set-Cookie": "a=1; Path=/", "Vary": "Accept"}
    two = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert two.get_all("Set-Cookie") == ["a=1", "b=2"]
    with pytest.raises(UsageError, match="multi_items"):
        two.to_dict()


def test_headers_are_immutable_values() -> None:
    headers = Headers({"A": "1"})
    replaced = headers.with_header("a", "2")
    assert headers.get("A") == "1"
    assert replaced.get_all("A") == ["2"]
    assert Headers([("A", "1"), ("a", "3")]).with_header("A", "x").get_all("a") == ["x"]
    assert "a" not in headers.without("A")
    assert headers == Headers({"A": "1"})
    assert Headers(headers) == headers
    assert Headers() == Headers(None)
    with pytest.raises(AttributeError):
        headers._items = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    "pair",
    [("X-Test", "a\r\nInjected: 1"), ("X-Test", "a\nb"), ("X-Te\rst", "a"), ("X\n", "a")],
)
def test_headers_refuse_cr_lf(pair: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        Headers([pair])
    with pytest.raises(ValueError):
        Headers().with_header(*pair)


def test_headers_refuse_non_str() -> None:
    with pytest.raises(TypeError):
        Headers({"A": 1})
    with pytest.raises(TypeError):
        Headers("A: 1")


@pytest.mark.parametrize(
    "items",
    [
        [("A",)],
        [("A", "b", "c")],
        [1],
        [("A", b"b")],
        [(b"A", "b")],
        [("A", "b"), ("C", None)],
        (("A", "b"), "x"),
    ],
)
def test_headers_refuse_anything_but_str_pairs(items: Any) -> None:
    with pytest.raises(ArgumentTypeError):
        Headers(items)


def test_headers_take_pairs_from_any_iterable() -> None:
    expected = (("A", "b"), ("C", "d"))
    assert Headers([["A", "b"], ["C", "d"]]).multi_items() == expected
    assert Headers(iter(expected)).multi_items() == expected
    assert Headers({"A": "b", "C": "d"}).multi_items() == expected
    assert Headers(()).multi_items() == ()


def test_headers_from_parsed_still_refuse_cr_lf() -> None:
    items = (("Host", "issuer.example"), ("DPoP", "a.b.c"))
    assert Headers.from_parsed(items) == Headers(items)
    for bad in ((("X-Test", "a\r\nInjected: 1"),), (("X\n", "a"),)):
        with pytest.raises(UsageError):
            Headers.from_parsed(bad)


def test_headers_repr_hides_credentials() -> None:
    headers = Headers(
        {
            "Authorization": "DPoP secret-access-token",
            "DPoP": "eyJhbGciOi.secret-proof.sig",
            "Cookie": "session=secret-cookie",
            "Content-Type": "application/json",
        }
    )
    text = repr(headers)
    for secret in ("secret-access-token", "secret-proof", "secret-cookie"):
        assert secret not in text
    assert "application/json" in text
    assert "Authorization" in text
    request = HttpRequest(method="POST", url="https://x.example/credential", headers=headers)
    assert "secret-access-token" not in repr(request)
    lower = Headers({"authorization": "Bearer secret-access-token"})
    assert "secret-access-token" not in repr(lower)


# --- HttpRequest ---------------------------------------------------------------------------


def test_request_json_helper() -> None:
    request = HttpRequest.json(
        "post", "https://issuer.example/credential", {"a": [1, "é"]}, {"X-A": "1"}
    )
    assert request.method == "POST"
    assert request.media_type == JSON_CONTENT_TYPE
    assert request.headers.get("x-a") == "1"
    assert request.json_body() == {"a": [1, "é"]}
    # Content-Type is replaced, not duplicated.
    again = HttpRequest.json("POST", "https://x", {}, {"content-type": "text/plain"})
    assert again.headers.get_all("Content-Type") == [JSON_CONTENT_TYPE]


def test_request_form_helper() -> None:
    data = {
        "grant_type": "authorization_code",
        "code": "a b&c=d",
        "redirect_uri": "https://w/cb?x=1",
    }
    request = HttpRequest.form("POST", "https://as.example/token", data)
    assert request.media_type == FORM_CONTENT_TYPE
    assert b"a+b%26c%3Dd" in request.body
    assert request.form_body() == data
    assert HttpRequest(method="POST", url="https://x", body=b"").form_body() == {}
    assert HttpRequest(method="POST", url="https://x", body=b"a=").form_body() == {"a": ""}


def test_media_type_ignores_parameters_and_case() -> None:
    request = HttpRequest(
        method="POST", url="https://x", headers={"content-type": "Application/JSON; charset=utf-8"}
    )
    assert request.media_type == "application/json"
    assert HttpRequest(method="GET", url="https://x").media_type == ""


def test_form_repeated_parameter_names_the_path() -> None:
    request = HttpRequest(method="POST", url="https://x", body=b"code=1&code=2&a=b")
    with pytest.raises(WireFormatError) as info:
        request.form_body()
    assert info.value.path == "code"
    assert "repeated" in str(info.value)
    assert "1" not in str(info.value).replace("code", "")


@pytest.mark.parametrize("body", [b"\xff\xfe=1", b"a=1&&b", b"noequals"])
def test_form_invalid(body: bytes) -> None:
    with pytest.raises(WireFormatError):
        HttpRequest(method="POST", url="https://x", body=body).form_body()


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff", b"[1, 2]", b'"text"', b"null"])
def test_invalid_json_is_a_wire_format_error(body: bytes) -> None:
    with pytest.raises(WireFormatError):
        HttpRequest(method="POST", url="https://x", body=body).json_body()
    with pytest.raises(WireFormatError):
        HttpResponse(status=200, body=body).json_body()


def test_body_coercion() -> None:
    assert HttpRequest(method="GET", url="https://x", body="é").body == "é".encode()
    assert HttpRequest(method="GET", url="https://x", body=bytearray(b"ab")).body == b"ab"
    assert HttpRequest(method="GET", url="https://x", body=None).body == b""
    with pytest.raises(TypeError):
        HttpRequest(method="GET", url="https://x", body=12)


def test_request_dict_round_trip() -> None:
    request = HttpRequest.json(
        "POST", "https://issuer.example/credential?x=1", {"k": "v"}, {"DPoP": "proof"}
    )
    data = request.to_dict()
    assert data["method"] == "POST"
    assert data["url"] == "https://issuer.example/credential?x=1"
    assert data["headers"] == {"DPoP": "proof", "Content-Type": JSON_CONTENT_TYPE}
    assert data["body"] == b'{"k":"v"}'
    assert HttpRequest.from_dict(data) == request
    assert HttpRequest.coerce(data) == request
    assert HttpRequest.coerce(request) is request


def test_request_from_minimal_dict() -> None:
    request = HttpRequest.from_dict({"method": "get", "url": "https://x/y"})
    assert request.method == "GET"
    assert request.body == b""
    assert len(request.headers) == 0
    for bad in ({"url": "https://x"}, {"method": "GET"}, {"method": 1, "url": "https://x"}):
        with pytest.raises(WireFormatError):
            HttpRequest.from_dict(bad)


def test_request_repr_hides_query_body_and_headers() -> None:
    request = HttpRequest.form(
        "POST",
        "https://as.example/token?code=secret-code&state=s",
        {"code": "secret-body-code"},
        {"Authorization": "Basic secret-basic"},
    )
    text = repr(request)
    assert "https://as.example/token" in text
    for secret in ("secret-code", "secret-body-code", "secret-basic", "state"):
        assert secret not in text


def test_requests_are_frozen() -> None:
    request = HttpRequest(method="GET", url="https://x")
    with pytest.raises(AttributeError):
        request.url = "https://y"  # type: ignore[misc]


# --- HttpResponse --------------------------------------------------------------------------


def test_response_json_and_dict() -> None:
    response = HttpResponse.json(201, {"request_uri": "urn:x", "expires_in": 60}, {"X": "1"})
    assert response.status == 201
    assert response.media_type == JSON_CONTENT_TYPE
    assert response.json_body() == {"request_uri": "urn:x", "expires_in": 60}
    data: dict[str, Any] = response.to_dict()
    assert data["status"] == 201
    assert data["headers"] == {"X": "1", "Content-Type": JSON_CONTENT_TYPE}
    assert data["body"] == b'{"request_uri":"urn:x","expires_in":60}'


def test_response_repr_hides_body() -> None:
    response = HttpResponse.json(200, {"access_token": "secret-at"})
    assert "secret-at" not in repr(response)
    assert "200" in repr(response)


def test_transport_protocol_is_runtime_checkable() -> None:
    class Dummy:
        async def send(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse(status=204)

        async def aclose(self) -> None:
            return None

        async def __aenter__(self) -> Dummy:
            return self

        async def __aexit__(self, *args: object) -> None:
            return None

    assert isinstance(Dummy(), Transport)
    assert not isinstance(object(), Transport)


def test_client_address_round_trips_through_request_dicts() -> None:
    request = HttpRequest(method="POST", url="https://i.example/nonce", client_address="192.0.2.1")
    data = request.to_dict()
    assert data["client_address"] == "192.0.2.1"
    assert HttpRequest.from_dict(data) == request
    assert "client_address" not in HttpRequest(method="GET", url="https://i.example/").to_dict()
    with pytest.raises(WireFormatError):
        HttpRequest.from_dict({"method": "GET", "url": "https://i.example/", "client_address": 1})


def test_a_repeated_content_type_with_different_values_is_no_media_type() -> None:
    """RFC 9110 §8.3: Content-Type is a singleton field. Two different values are no media
    type (the endpoint then answers 415 / 400), not whichever one a reader takes first."""
    both = [("Content-Type", "application/json"), ("Content-Type", "text/plain")]
    assert HttpRequest(method="POST", url="https://a.example/", headers=both).media_type == ""
    response = HttpResponse(status=200, headers=both)
    assert response.media_type == ""
    same = [("Content-Type", "application/json"), ("Content-Type", "application/json")]
    assert HttpRequest(method="POST", url="https://a.example/", headers=same).media_type == (
        "application/json"
    )
    one = [("content-type", "Application/JSON; charset=utf-8")]
    assert HttpRequest(method="POST", url="https://a.example/", headers=one).media_type == (
        "application/json"
    )
