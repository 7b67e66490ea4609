"""Benchmarks: the webhook load benchmark (`communitybot bench`) and the classifier benchmark."""
