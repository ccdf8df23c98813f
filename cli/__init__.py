"""The Liftoff command line, one file per job; `starter.py` is its entry point.

`main.py` dispatches and maps failures to exit codes, `parser.py` declares the
commands and flags, `inputs.py` checks what the user typed before anything is
sent, `output.py` formats what commands print, `connections.py` opens Temporal
and the database, and `commands/` holds the commands by what they work on.
"""
