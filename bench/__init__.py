"""Benchmarks of SoundForge on the loopback stand-ins; `python -m bench` runs the import one."""
