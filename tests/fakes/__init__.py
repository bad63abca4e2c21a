"""Fakes of the services the sidecar talks to, served over real HTTP on 127.0.0.1."""
