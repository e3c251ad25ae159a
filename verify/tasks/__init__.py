"""Exact tasks over the encoders and backends: minimal adversarial examples, robustness
certificates (and, later, explanations). Each returns a typed result."""
