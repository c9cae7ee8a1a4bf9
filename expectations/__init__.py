"""Great Expectations suites as code. ``expectations.bars``: the rules for daily bars and their severity."""
