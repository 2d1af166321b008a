"""Stand-in for eossr 0.6.1, which does not build on these machines (see ../../README.md).

The gateway imports two functions from ``eossr.api`` at module load; nothing in the nbpack tests calls them.
"""
