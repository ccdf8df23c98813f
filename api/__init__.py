"""Liftoff's HTTP surface: the REST API, the usage intake and the CSM dashboard."""
