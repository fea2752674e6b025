"""The prefecture server serves nothing on a city's bus: it belongs to another organisation
and is reached over HTTPS with mutual TLS only (see ``api.py``)."""

SERVED: dict = {}
