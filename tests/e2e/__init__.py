"""End-to-end matrix: our wallet against our issuer, in memory, over aiohttp, and via the CLI."""
