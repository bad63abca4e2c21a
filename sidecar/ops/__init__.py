"""Operations: metrics, the HTTP server for /metrics and the health probes, logging."""
