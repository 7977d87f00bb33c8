"""Simulated vendor systems (ASGI apps) speaking the real wire formats."""
