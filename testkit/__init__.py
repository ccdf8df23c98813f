"""What the tests and the bench both need: test data, the loopback SendGrid, the
servers they start. Never shipped (not a setuptools package); bench/ imports from
here, never from tests/."""
