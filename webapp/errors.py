"""The one exception type for a refused request, shared by every app's actions."""


class Refused(Exception):
    """A refused change, with a message written for the person who asked.

    `status` is the HTTP status the API answers with; `field` names the input to fix, and
    `errors` every input to fix when there are several ({field: message}).
    """

    status = 400

    def __init__(self, message: str, field: str | None = None, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors or ({field: message} if field else {})
