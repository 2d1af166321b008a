"""The bundle runtime's home in nbpack: ``nbpack_runtime`` below is copied whole into every bundle, and is nbpack's
lowest layer, the one definition of the bundle format's shared words (``nbpack_runtime.vocab``)."""
