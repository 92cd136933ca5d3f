"""What both entry scripts share at their edges: one-line errors and exit codes."""

import argparse
import os
import sys

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a program ended by SIGPIPE


class UserError(Exception):
    """Bad input the user can fix; shown as one line, without a traceback."""


class StoppedEarly(Exception):
    """A run stopped on request where it can continue from; the message says how."""


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
    except StoppedEarly as stopped:
        log(str(stopped))
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        log("Interrupted.")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout has gone, as `| head -1` does: end quietly
        # Python flushes stdout once more at exit; pointed at /dev/null that flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _checked(convert, accept, name: str):
    """An argparse type: convert the text, refuse values outside the range (argparse names it in its error)."""

    def parse(text: str):
        value = convert(text)
        if not accept(value):
            raise ValueError(text)
        return value

    parse.__name__ = name
    return parse


positive_int = _checked(int, lambda value: value >= 1, "positive int")
non_negative_int = _checked(int, lambda value: value >= 0, "non-negative int")
positive_float = _checked(float, lambda value: value > 0, "positive float")
non_negative_float = _checked(float, lambda value: value >= 0, "non-negative float")
probability = _checked(float, lambda value: 0 < value <= 1, "probability in (0, 1]")
dropout_rate = _checked(float, lambda value: 0 <= value < 1, "rate in [0, 1)")
# numpy's generators, which the Trainer seeds too, take 32-bit seeds.
seed = _checked(int, lambda value: 0 <= value < 2**32, "seed in [0, 4294967295]")
