"""The team server: the store service over HTTP (FastAPI). Routes only translate between
HTTP and ``Store`` calls; every rule (access, validation) lives in the store."""
