"""Process-level plumbing shared by the rule scripts and the CLI: logging, threads and user-facing errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from genolm.errors import GenolmError

T = TypeVar("T")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    """Log to the rule's log file when there is one, else to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_path, mode="w")]
    logging.basicConfig(level=level, format=_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)


def set_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads to what the scheduler granted, so parallel jobs do not oversubscribe."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a GenolmError into one clear line on stderr and exit status 1 instead of a traceback."""
    try:
        yield
    except GenolmError as error:
        logging.getLogger("genolm").error("%s", error)
        print(f"genolm: error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    except Exception:
        # A bug, not a user error: keep the traceback, and put it in the rule's log too.
        logging.getLogger("genolm").exception("unexpected error")
        raise


def run_step(step: Callable[..., T], log_path: str | Path | None, /, threads: int | None = None, **kwargs) -> T:
    """Run one pipeline step the way every rule script does: logging to the rule's log, threads, clear errors.

    `step` and `log_path` are positional-only, so a step may itself take arguments of those names."""
    configure_logging(log_path)
    set_threads(threads)
    with user_errors():
        return step(**kwargs)
