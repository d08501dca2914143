"""``virtbench serve``: a results dashboard over the store (docs/serve.md).

Needs the ``[serve]`` extra (Starlette, uvicorn); ``virtbench.cli.serve`` says so in one
line when it is missing.
"""
