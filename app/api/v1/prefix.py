"""The version prefix, written into each router's own prefix.

Routes carry their full path this way, so that metrics label requests by the complete
route template.
"""

API_V1 = "/api/v1"
