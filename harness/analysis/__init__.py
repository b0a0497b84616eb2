"""Stage 3, reading a console: KTAP parser, crash finder, selftest lines, classification."""
