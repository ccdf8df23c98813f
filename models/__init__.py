"""Types shared by the workflow, its activities and the client.

Plain pydantic models only: the workflow sandbox passes these modules through,
so nothing here may read settings, the environment or the database.
"""
