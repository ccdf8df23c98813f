"""What the tests share: fixtures (registered in tests/conftest.py), harnesses and helpers.

Test files import from here and from testkit/ (test data, the loopback SendGrid,
which the bench uses too), never from one another.
"""
