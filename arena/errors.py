"""The one exception type for bad user input, so every entry point (CLI, HTTP) can report it cleanly."""


class ArenaError(ValueError):
    """A setting, name or value a user gave is not valid. `field` names what was wrong, when known."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field
        self.message = message
