"""Process: CLI, configuration, wiring, control socket, metrics, systemd notify, signals, logging."""
