"""The HTTP API, version 1 (docs/api.md): thin DRF views over the services
and selectors of the apps."""
