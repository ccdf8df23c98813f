"""What operators watch: Liftoff's own metrics and the health probes of its processes."""
