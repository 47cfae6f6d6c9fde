"""The client: backends, the chunk cache, transfers and the public API objects."""
