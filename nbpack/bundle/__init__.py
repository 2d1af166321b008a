"""The bundle format on nbpack's side: build a bundle (catalogs as Parquet, file references, the notebook with its
bootstrap and results cells, RO-Crate metadata), read and check bundles and return bundles from elsewhere, and
summarise them. Below storage and hubs: nothing here knows where a bundle is kept or how it is opened.
"""
