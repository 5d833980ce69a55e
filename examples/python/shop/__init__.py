"""shop: a small asyncio order service that reports its failures to errq (examples/python)."""
