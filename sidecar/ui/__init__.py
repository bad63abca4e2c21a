"""The status page (``ui:``): server-rendered HTML and ``/api/status``, read only."""
