"""The one exception type for bad user input, so every entry point (CLI, HTTP) can report it cleanly."""


class ArenaError(ValueError):
    """A setting, name or value a user gave is not valid.

    `field` names what was wrong, when known; `location` is its full path (e.g. ("ga", "population_size")).
    """

    def __init__(self, message: str, field: str | None = None, location: tuple = ()):
        super().__init__(message)
        self.message = message
        self.location = tuple(location) or ((field,) if field else ())
        names = [part for part in self.location if isinstance(part, str)]  # ("architecture", "hidden_sizes", 1) -> hidden_sizes
        self.field = field if field is not None else (names[-1] if names else None)
