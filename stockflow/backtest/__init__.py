"""Backtesting: the vectorized engine, strategies, ensemble voting, walk-forward ML and tearsheets."""
