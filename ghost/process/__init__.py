"""A task's life as processes: launching its monitor, the monitor and its waiter, recording
the end, and process identity and signalling safe against PID reuse.
"""
