"""generate.py --chat: a conversation, each answer given with the turns before it.

The turns are sent through the model's chat template, as in training on conversations. When
the conversation no longer fits the model's positions beside an answer, its oldest turns are
dropped, with a notice; an empty line or /reset starts a new conversation.
"""

from ..cli import log
from ..data.instructions import Turn
from .generation import Answerer
from .requests import Request

RESET_COMMAND = "/reset"


class Conversation:
    def __init__(self, answerer: Answerer):
        self.answerer = answerer
        self.history: list[Turn] = []

    def ask(self, instruction: str, where: str) -> Request:
        """The instruction with as many of the latest turns as fit beside the answer."""
        while True:
            request = Request(instruction, where=where, history=tuple(self.history))
            if not self.history or self.answerer.fits(request):
                return request
            self.history.pop(0)
            log(
                f"Notice: the conversation no longer fits the model's {self.answerer.context} positions; "
                "its oldest turn is left out."
            )

    def record(self, request: Request, answer: str) -> None:
        self.history.append(Turn(request.instruction, answer, request.input))

    def reset(self) -> None:
        self.history.clear()
