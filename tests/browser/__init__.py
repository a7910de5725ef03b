"""Browser tests: the issuer's login page and the code flow driven by headless Chromium."""
