"""The one exception type for bad dataset input: it names the file and the problem."""
from pathlib import Path


class DatasetError(ValueError):
    """Raised for any invalid input file; the message starts with the offending path."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{Path(path)}: {problem}")
