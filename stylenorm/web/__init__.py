"""The local web app (``stylenorm serve``): a Gradio page and an HTTP API over the stylisation
API. Needs the optional extra ``stylenorm[web]``; importing this package imports no Gradio."""
