"""The HTTP API, one router per part of the store service (all under ``/api/v1``)."""
