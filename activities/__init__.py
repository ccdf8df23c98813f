"""All I/O of Liftoff: database, email and usage sources, used by activities."""
