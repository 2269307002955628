"""Keep the host awake while something is in flight: systemd-logind's inhibitor on Linux, wakepy elsewhere."""
