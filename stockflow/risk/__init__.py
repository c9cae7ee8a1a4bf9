"""Risk engine: pure sizing/stop functions, limits, circuit breaker and the persisted trading state."""
