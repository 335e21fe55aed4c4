"""Small parts with no opinion about calls: backoff, a circuit breaker, encodable text, request ids, terminal output,
logs."""
