"""Object storage and what lives in it: one small ``Storage`` interface with a local-folder and an S3 backend, the
key layout, a handle's zip kept as content-addressed parts, members read without the rest, upload spools, blobs
sent straight to the store, and the cache of objects that never change once written.
"""
