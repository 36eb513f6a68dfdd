"""A scripted provider for `httpx.MockTransport`: the client tests' stand-in when no socket is needed."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx

RESULT_URL = "https://results.test/a/1.png?Expires=1765264493&OSSAccessKeyId=X&Signature=ab%2Bc%3D"


def ok(order_id: str = "JH1", urls: tuple[str, ...] = (RESULT_URL,)) -> httpx.Response:
    result = {"orderid": order_id, "images": [{"image": u} for u in urls]}
    return httpx.Response(200, json={"reason": "成功", "result": result, "error_code": 0})


class Provider:
    """A MockTransport handler that answers from a script (the last answer repeats) and records
    every request; an exception in the script is raised instead of answering. Each answer is a
    fresh copy, so one scripted response can serve several requests and clients."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]


def form_of(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode("ascii"), keep_blank_values=True).items()}
