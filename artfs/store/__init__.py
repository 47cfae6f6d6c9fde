"""The store: metadata database, blob store and the one domain service both backends call."""
