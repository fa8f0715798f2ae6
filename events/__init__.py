"""ghost's event log: event records, the msgpack codec, and the LMDB store (append, read, follow).

Must not import `ghost` or `projections`.
"""
