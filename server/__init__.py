"""The nbpack service: a Flask app factory; views only translate HTTP into nbpack calls."""
