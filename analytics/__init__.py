"""Cohort analytics: pure computation over rows the records layer reads; no database, no HTTP."""
