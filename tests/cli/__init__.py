"""Tests of the pieces of the ``oid4vci`` command: exits, options, the demo page."""
