"""Use-case specifics (patch sampling, names, splits) kept apart from the shared machinery."""
