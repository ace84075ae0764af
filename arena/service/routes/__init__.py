"""The API's routes, one module per resource (each has its own `router`, included by arena.service.app)."""
