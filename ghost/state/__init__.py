"""The recorded side, read back: opening the store, the task view reconciled with the live
system, task log files, and the records the event feed exports.
"""
