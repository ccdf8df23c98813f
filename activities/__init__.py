"""Temporal activities only: classes taking their dependencies in the constructor, each
activity idempotent on retry. Plain database code they share lives in records/."""
