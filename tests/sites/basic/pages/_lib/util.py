"""Helper module of the e2e test site; a `_` folder is never a route."""
# PAGE-SOURCE-MARKER-8f3b


def shout(text: str) -> str:
    return text.upper()
