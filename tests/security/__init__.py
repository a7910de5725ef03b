"""Hostile input against every issuer endpoint."""
