"""Test faults, served only by an `up` process started with LOOOP_TEST_FAULTS=1 (the tests set it;
nothing else does): the request `{"op": "crash", "actor": NAME}` crashes that actor of the tree
(`server`, `beat`, `workers` (the fleet), `worker/ID` (a session actor), ...) as a bug in it
would, so that its supervision is tested inside a real `up`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pykka

from looop.actors.server import Fault
from looop.supervisor import ThreadCrashed, children_of

ENABLE = "LOOOP_TEST_FAULTS"


def fault_handlers(actor: Callable[[str], pykka.ActorRef[Any]]) -> dict[str, Fault]:
    """The `crash` op when faults are enabled, else none; `actor(name)` is the live ref."""
    if os.environ.get(ENABLE) != "1":
        return {}

    def crash(request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("actor"))  # unparsed: the op is not the protocol's
        try:
            if name.startswith("worker/"):
                target = children_of(actor("workers")).get(name.removeprefix("worker/"))
                if target is None:
                    raise pykka.ActorDeadError(name)
            else:
                target = actor(name)
            target.tell(ThreadCrashed("injected", RuntimeError(f"injected fault in {name}")))
        except pykka.ActorDeadError:
            return {"ok": False, "error": f"{name} is not running"}
        return {"ok": True}

    return {"crash": crash}
