"""What the sidecar says, in its family's language: the sandboxed Jinja2 environment the
``messages:`` templates run in (``environment``), their filters (``filters``), the escape of
every value from Immich or Discord (``escape``), the documented context (``context``) and its
sample data (``samples``), the built-in texts, which are themselves templates in the gettext
catalogs under ``sidecar/locales`` (``texts``, ``catalogs``), the load-time check of a config's
templates (``templates``), and rendering one message within Discord's limits (``render``).

Pure where it can be: the only I/O is reading the catalogs once per language. Nothing here
imports another part of the sidecar but its domain values (``sidecar.immich.models``).
"""
