"""The local web app (``stylenorm serve``): a Gradio page and an HTTP API over the stylisation
API. Needs the optional web extra (``pip install -e ".[web]"``); importing this package imports
no Gradio."""
