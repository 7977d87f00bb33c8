"""Vendor adapters, the shared HTTP layer, the rate governor and the sandbox."""
