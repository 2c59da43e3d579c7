"""One exception type for every problem a user can fix; the pipeline prints it as one line."""


class VaelabError(Exception):
    """A problem with inputs, data, params or environment, with the fix in its message."""
