"""Small runnable programs showing how to use oid4vci (each is run by tests/test_examples.py)."""
