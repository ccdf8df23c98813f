"""Plain database and file code shared by the API, the CLI and the activities."""
