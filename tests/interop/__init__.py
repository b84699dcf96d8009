"""Interop tests against SyncEvolution 2.0 from Debian, an independent SyncML implementation."""
