"""Grounding (audio-language) models behind one interface: LAION-CLAP from a local folder, or the built-in one."""
