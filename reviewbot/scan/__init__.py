"""Nightly scans of mail archives: read new mail since the last scan, review each new or
changed series, remember what was found (run.py is the scan; source, threads, state and
pool are its parts)."""
