"""``bisep serve``: a local web page and JSON API for separating uploaded audio by text prompts.

``app`` builds the FastAPI application (routes, limits, the page and its static files), ``jobs`` holds the bounded
queue that runs one separation at a time and the janitor that removes old results, and ``pipeline`` turns one
upload into audio files and spectrogram images.
"""
