"""Try a playbook change before it ships: the real workflow on the time-skipping
server against a synthetic cohort or the recorded usage of past customers."""
