"""CX dashboard: `./cx dashboard [--port P] [--published PATH]` serves the published DuckDB file on 127.0.0.1.

`published.py` reads the file (read-only, never held open, a new generation is read when the file changes);
`app.py` builds the Dash pages; `__main__.py` serves them (uvicorn). Nothing here imports the pipeline runtime
except `cxw.config.paths` for the default file.
"""
