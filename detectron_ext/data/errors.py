"""The one exception type for bad dataset input: it names the file and the problem."""
from pathlib import Path


class DatasetError(ValueError):
    """Raised for any invalid input file; the message starts with the offending path."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever a library's message held
        super().__init__(f"{Path(path)}: {self.problem}")


def read_text(path) -> str:
    """A text file's content (UTF-8, with or without a byte-order mark); DatasetError if unreadable."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(path, f"not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    except OSError as e:
        raise DatasetError(path, f"cannot read it ({e.strerror})") from None
