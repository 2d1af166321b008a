"""Opening a stored bundle in a hub: signed capability tokens and the service's URL layout, the hub registry and
its ranking, launch links (nbgitpuller, fromurl, profiles, BinderHub), and the read-only git repository a hub clones.
"""
