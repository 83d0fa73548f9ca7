"""What people do in the page, as the tests say it."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

ACTIVE = "section.room:not([hidden])"


def by_role(demo: dict) -> dict:
    """mediator, company, consumer1, consumer2 … → the demo users."""
    out, consumers = {}, 0
    for user in demo["users"]:
        if user["role"] == "consumer":
            consumers += 1
            out[f"consumer{consumers}"] = user
        else:
            out[user["role"]] = user
    return out


def enter_room(person, mediation_id: str) -> None:
    """Signs in from the home page and enters the plenary room from the list."""
    person.login("/")
    card = person.page.locator(f'li.mediation[data-mediation-id="{mediation_id}"]')
    card.locator("a.enter").click()
    wait_live(person.page)


def wait_live(page: Page, timeout: float = 15_000) -> None:
    expect(page.locator(f"{ACTIVE} .conn")).to_have_attribute("data-state", "live", timeout=timeout)


def say(page: Page, text: str) -> None:
    """Types a message in the active room and sends it with Enter; waits for it in the log."""
    wait_live(page)
    box = page.locator(f"{ACTIVE} .composer textarea")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(f"{ACTIVE} li.message .body", has_text=text)).to_have_count(1)
    expect(box).to_have_value("")


def chat(page: Page, scope: str = ACTIVE) -> list[tuple[int, str]]:
    """(seq, body) of every message shown in the room, in page order."""
    rows = page.locator(f"{scope} li.message").evaluate_all(
        "items => items.map(li => [Number(li.dataset.seq), li.querySelector('.body').textContent])"
    )
    return [(seq, body) for seq, body in rows]


def assert_fits(page: Page) -> None:
    """Nothing wider than the screen (360 px phones): no sideways scrolling."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


class SocketTap:
    """Sits between a page and the server on every room socket the page opens: forwards
    frames both ways, and can swallow what the server sends (a connection that died
    without telling anyone), cut the socket, and replay old frames on the next one."""

    def __init__(self, page: Page):
        self.sockets: list = []
        self.swallowing = False
        self.swallowed: list[str] = []
        self.delivered: list[str] = []
        self.replay_after_welcome: list[str] = []
        page.route_web_socket(re.compile(r"/ws/rooms/\d+/$"), self._open)

    def _open(self, page_side) -> None:
        server_side = page_side.connect_to_server()
        page_side.on_message(lambda message: server_side.send(message))

        def from_server(message) -> None:
            if self.swallowing:
                self.swallowed.append(message)
                return
            self.delivered.append(message)
            page_side.send(message)
            if self.replay_after_welcome and json.loads(message).get("type") == "welcome":
                for old in self.replay_after_welcome:
                    page_side.send(old)
                self.replay_after_welcome = []

        server_side.on_message(from_server)
        self.sockets.append(page_side)

    def cut(self) -> None:
        """Closes the page's current socket (and with it the server's)."""
        self.sockets[-1].close(code=4000, reason="cut by the test")

    def frames(self, messages: list[str], frame_type: str) -> list[dict]:
        return [frame for frame in map(json.loads, messages) if frame.get("type") == frame_type]
