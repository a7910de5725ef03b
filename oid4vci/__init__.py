"""oid4vci: OpenID for Verifiable Credential Issuance for Python (wallet and issuer)."""

__version__ = "0.1.0"
