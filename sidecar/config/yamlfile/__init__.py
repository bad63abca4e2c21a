"""The config file as YAML: read with the line of every key and value (``source``), and its
mistakes said in plain words on the right line (``words``)."""
