"""What both entry scripts share at their edges: one-line errors and exit codes."""

import argparse
import sys

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input the user can fix; shown as one line, without a traceback."""


def log(message: str) -> None:
    """Diagnostics go to stderr so that stdout can carry results alone (see --jsonl)."""
    print(message, file=sys.stderr, flush=True)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default once: not for switches, nor where the help names a default of its own."""

    def _get_help_string(self, action):
        if action.default in (None, False, []) or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def run_cli(main, argv=None) -> int:
    try:
        return main(argv) or 0
    except UserError as error:
        log(f"error: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        log("Interrupted.")
        return EXIT_INTERRUPTED


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


def dropout_rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise ValueError(text)
    return value


# argparse names the type in its error message ("invalid positive_int value: '0'").
for _check in (positive_int, non_negative_int, positive_float, non_negative_float, probability, dropout_rate):
    _check.__name__ = _check.__name__.replace("_", " ")
