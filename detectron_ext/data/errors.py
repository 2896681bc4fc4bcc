"""The one exception type for bad dataset input: it names the file and the problem."""
import re
from pathlib import Path

_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")  # e.g. PIL's "<_io.BytesIO object at 0x7f..>"


class DatasetError(ValueError):
    """Raised for any invalid input file; the message starts with the offending path."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        # one line, whatever a library's message held, without its objects' memory addresses
        self.problem = " ".join(_OBJECT_REPR.sub("", str(problem)).split())
        super().__init__(f"{Path(path)}: {self.problem}")


def read_text(path) -> str:
    """A text file's content (UTF-8, with or without a byte-order mark); DatasetError if unreadable."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(path, f"not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    except OSError as e:
        raise DatasetError(path, f"cannot read it ({e.strerror})") from None
