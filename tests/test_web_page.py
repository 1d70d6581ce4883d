"""The web chat page, driven in a real headless Chromium against ``agentproc serve``
(see web_kit: Debian's chromium, never a browser Playwright downloads). Each
test runs in a fresh browser context, with its own storage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Route, expect, sync_playwright
from serve_kit import Served, serving
from web_kit import (
    ALICE,
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    Cable,
    Tab,
    config,
    conversation_id,
    streamed,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (
        f"the browser tests need Chromium at {CHROMIUM}: `make test` installs Debian's "
        "chromium package (or run `apt-get install chromium` as root)"
    )
    with sync_playwright() as p:
        # launch() gives the browser a fresh, temporary user data folder.
        found = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield found
        found.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web")
    with serving(tmp, config(tmp)) as served:
        yield served


@pytest.fixture
def tab(browser: Browser, server: Served) -> Iterator[Tab]:
    opened = Tab(browser, server.url)
    yield opened
    opened.close()


# --- streaming and history -------------------------------------------------------------------


def test_a_reply_streams_in_and_the_final_text_replaces_it(tab: Tab) -> None:
    page = tab.open()
    tab.start("stream", "hello")
    final = streamed("hello", 5)
    assert tab.finished(1) == final
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(page.locator(".msg.user .body")).to_have_text("hello")
    shown = [(status, text) for turn, status, text in tab.shown() if turn == "1"]
    streaming = [text for status, text in shown if status == "running" and text]
    assert streaming and streaming[0].startswith("part 1 of hello."), shown
    assert all(final.startswith(text) for text in streaming), "only ever a prefix of the reply"
    assert len(set(streaming)) >= 3, "the text grew chunk by chunk, before completion"
    assert page.locator("#log").inner_text().count("done.") == 1


def test_enter_sends_and_shift_enter_starts_a_new_line(tab: Tab) -> None:
    page = tab.open()
    page.select_option("#route", "echo")
    page.click("#new-conversation")
    page.type("#message", "line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(page.locator(".msg.user")).to_have_count(0)
    page.keyboard.press("Enter")
    assert tab.finished(1) == "You said: line one\nline two"
    expect(page.locator("#message")).to_have_value("")


def test_a_reload_shows_the_history_and_the_list_finds_it(tab: Tab, browser: Browser) -> None:
    page = tab.open()
    tab.start("echo", "first message")
    tab.finished(1)
    tab.say("second message")
    tab.finished(2)
    page.click("#reset")
    expect(page.locator(".notice")).to_contain_text("New agent session")
    conv = conversation_id(page)

    page.reload()
    assert tab.finished(1) == "You said: first message"
    assert tab.finished(2) == "You said: second message"
    expect(page.locator(".msg.user .body")).to_have_text(["first message", "second message"])
    expect(page.locator(".msg.agent")).to_have_count(2)
    current = page.locator('.conversation[aria-current="true"]')
    expect(current).to_contain_text("first message")
    assert current.get_attribute("data-id") == conv

    other = Tab(browser, tab.url)  # a second browser: no fragment, no storage
    try:
        second = other.open()
        second.click(f'.conversation[data-id="{conv}"]')
        assert other.finished(2) == "You said: second message"
        other.say("third")
        assert other.finished(3) == "You said: third"
    finally:
        other.close()
    # The first page follows the conversation live, whoever writes to it.
    assert tab.finished(3) == "You said: third"


def test_a_reload_mid_reply_shows_the_history_and_the_reply_going_on(tab: Tab) -> None:
    page = tab.open()
    tab.start("stream", "before")
    tab.finished(1)
    page.select_option("#route", "slow")  # only for new conversations: this one stays
    tab.say("during")
    expect(tab.agent(2).locator(".body")).to_contain_text("part 1 of during.")
    page.reload()
    assert tab.finished(2) == streamed("during", 5)
    assert tab.finished(1) == streamed("before", 5)
    expect(page.locator(".msg.user .body")).to_have_text(["before", "during"])
    expect(page.locator(".msg.agent")).to_have_count(2)
    assert page.locator("#log").inner_text().count("done.") == 2


def test_api_errors_are_shown_in_plain_words(tab: Tab, server: Served) -> None:
    page = tab.open()
    page.goto(server.url + "#c=no-such-conversation")
    banner = page.locator("#error")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("no conversation 'no-such-conversation'")
    expect(banner).to_contain_text("GET /v1/conversations lists yours")
    page.click("#error-close")
    expect(banner).to_be_hidden()


def test_cancel_stops_a_running_turn(tab: Tab) -> None:
    page = tab.open()
    tab.start("slow", "long")
    expect(tab.agent(1).locator(".body")).to_contain_text("part 1 of long.")
    page.click("#cancel")
    text = tab.finished(1, "cancelled")
    assert "done." not in text
    expect(tab.agent(1).locator(".meta")).to_contain_text("cancelled")


# --- approvals ------------------------------------------------------------------------------


def test_approval_cards_answer_and_follow_answers_from_elsewhere(tab: Tab, server: Served) -> None:
    page = tab.open()
    tab.start("ask", "go")
    cards = page.locator(".approval")
    bash, write = cards.nth(0), cards.nth(1)
    expect(bash.locator(".tool")).to_have_text("Bash")
    expect(bash.locator(".description")).to_have_text("use Bash")
    assert bash.locator("pre.input").inner_text() == json.dumps({"n": 1}, indent=2)
    bash.get_by_role("button", name="Allow").click()
    expect(bash.locator(".answer")).to_have_text("Allowed by local.")
    # The bridge asks one question at a time: the second comes after the first answer.
    expect(write.locator(".tool")).to_have_text("Write")
    # Answered by another client: the card shows it all the same.
    with server.client() as c:
        approval = write.get_attribute("data-approval")
        r = c.post(f"/v1/approvals/{approval}", json={"decision": "deny"})
        assert r.json()["answered"], r.text
    expect(write.locator(".answer")).to_have_text("Denied by local.")
    reply = tab.finished(1)
    assert "r1 allow=True" in reply and "r2 allow=False" in reply
    for card in (bash, write):
        expect(card.get_by_role("button", name="Allow")).to_be_disabled()


# --- losing the connection ------------------------------------------------------------------


def test_the_page_reconnects_after_going_offline_and_shows_the_text_once(tab: Tab) -> None:
    page = tab.open()
    tab.start("slow", "cut")
    expect(tab.agent(1).locator(".body")).to_contain_text("part 1 of cut.")
    tab.context.set_offline(True)
    expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    time.sleep(1.0)  # the agent streams on meanwhile
    tab.context.set_offline(False)
    final = streamed("cut", 8)
    assert tab.finished(1) == final
    assert page.locator("#log").inner_text().count("part 2 of cut.") == 1
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    texts = [text for turn, _, text in tab.shown() if turn == "1"]
    assert all(final.startswith(text) for text in texts), texts


def test_a_connection_cut_mid_reply_resumes_where_it_was(browser: Browser, server: Served) -> None:
    cable = Cable(server.url)
    tab = Tab(browser, cable.url)
    try:
        page = tab.open()
        tab.start("slow", "reset")
        expect(tab.agent(1).locator(".body")).to_contain_text("part 2 of reset.")
        cable.cut()
        final = streamed("reset", 8)
        assert tab.finished(1) == final
        assert tab.connection_states()[-3:] == ["live", "reconnecting", "live"]
        texts = [text for turn, _, text in tab.shown() if turn == "1"]
        assert all(final.startswith(text) for text in texts), texts
        assert page.locator("#log").inner_text().count("part 3 of reset.") == 1
        streams = [h for url, h in tab.requests if url.endswith("/events")]
        assert len(streams) >= 2 and streams[-1].get("last-event-id", "0") != "0", streams
    finally:
        tab.close()
        cable.close()


def test_the_page_follows_a_server_restart_mid_reply(browser: Browser, tmp_path: Path) -> None:
    yaml = config(tmp_path)
    with serving(tmp_path, yaml) as first:
        port = int(first.url.rstrip("/").rsplit(":", 1)[1])
        tab = Tab(browser, first.url)
        page = tab.open()
        tab.start("slow", "restart")
        expect(tab.agent(1).locator(".body")).to_contain_text("part 2 of restart.")
        # SIGTERM: the server drains, so the running turn finishes (its text
        # reaches the page) before the streams end and the process exits.
        first.stop()
    final = streamed("restart", 8)
    assert tab.finished(1) == final
    expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    with serving(tmp_path, yaml, port=port, data_dir=first.data_dir):
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        # It resumed after the last event it had, not from the start.
        resumed = [h for url, h in tab.requests if url.endswith("/events")][-1]
        assert resumed.get("last-event-id", "0").isdigit(), resumed
        assert int(resumed["last-event-id"]) > 1, resumed
        tab.say("after")
        assert tab.finished(2) == streamed("after", 8)
        texts = [text for turn, _, text in tab.shown() if turn == "1"]
        assert all(final.startswith(text) for text in texts), texts
        assert page.locator("#log").inner_text().count("part 3 of restart.") == 1
        expect(page.locator(".msg.agent")).to_have_count(2)
        tab.close()


def test_after_a_kill_mid_reply_the_page_shows_the_turn_abandoned_once(
    browser: Browser, tmp_path: Path
) -> None:
    yaml = config(tmp_path)
    with serving(tmp_path, yaml) as first:
        port = int(first.url.rstrip("/").rsplit(":", 1)[1])
        tab = Tab(browser, first.url)
        page = tab.open()
        tab.start("slow", "killed")
        expect(tab.agent(1).locator(".body")).to_contain_text("part 2 of killed.")
        first.kill()  # SIGKILL: no drain; the turn is left open in the log
    with serving(tmp_path, yaml, port=port, data_dir=first.data_dir):
        # On start the server closes the dead turn; the page, reconnected
        # from where it was, shows that and the text the log had kept.
        tab.finished(1, "abandoned")
        expect(tab.agent(1).locator(".error-text")).to_contain_text("abandoned")
        kept = tab.agent(1).locator(".body p").inner_text().strip()
        assert kept.startswith("part 1 of killed. part 2 of killed.")
        assert streamed("killed", 8).startswith(kept)
        expect(tab.agent(1).locator(".meta")).to_contain_text("abandoned")
        assert page.locator("#log").inner_text().count("part 2 of killed.") == 1
        tab.close()


def test_a_message_whose_answer_was_lost_is_sent_again_once(tab: Tab, server: Served) -> None:
    page = tab.open()
    sent: list[str] = []

    def lose_first_answer(route: Route) -> None:
        sent.append(route.request.headers.get("idempotency-key", ""))
        if len(sent) == 1:
            route.fetch()  # the bridge takes the message...
            route.abort("connectionreset")  # ...and its answer never arrives
        else:
            route.continue_()

    page.route("**/v1/conversations/*/messages", lose_first_answer)
    tab.start("echo", "only once")
    assert tab.finished(1) == "You said: only once"
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(sent) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(sent) == 2 and sent[0] == sent[1] != "", "sent again with the same key"
    expect(page.locator(".msg.user")).to_have_count(1)
    with server.client() as c:
        turns = c.get(f"/v1/conversations/{conversation_id(page)}/turns").json()
    assert [t["message"] for t in turns] == ["only once"]


# --- safety ---------------------------------------------------------------------------------


def test_html_in_messages_and_replies_is_shown_as_text(tab: Tab) -> None:
    page = tab.open()
    evil = "<img src=x onerror=alert(1)> <script>alert(2)</script> **bold** [x](javascript:0)"
    tab.start("echo", evil)
    reply = tab.agent(1).locator(".body")
    expect(reply).to_contain_text("<img src=x onerror=alert(1)> <script>alert(2)</script>")
    expect(reply.locator("strong")).to_have_text("bold")
    log = page.locator("#log")
    for tag in ("img", "script", "a", "iframe"):
        expect(log.locator(tag)).to_have_count(0)
    expect(page.locator('.conversation[aria-current="true"] .title')).to_contain_text("<img src=x")
    time.sleep(0.3)  # an onerror handler would have fired by now
    assert not tab.dialogs


NEW_TAB = 'target="_blank" rel="noopener noreferrer"'
#: (Markdown, the HTML of the nodes the renderer builds for it).
MARKDOWN_CASES = [
    ("**b** *i* `c<b>`", "<p><strong>b</strong> <em>i</em> <code>c&lt;b&gt;</code></p>"),
    ("one\ntwo\n\nthree", "<p>one<br>two</p><p>three</p>"),
    ("```js\n<b>x</b>\n```", '<pre><code data-lang="js">&lt;b&gt;x&lt;/b&gt;</code></pre>'),
    ("```\nunclosed <i>", "<pre><code>unclosed &lt;i&gt;</code></pre>"),
    ("- a\n- **b**", "<ul><li>a</li><li><strong>b</strong></li></ul>"),
    ("2. a\n3. b", '<ol start="2"><li>a</li><li>b</li></ol>'),
    ("> quoted", "<blockquote><p>quoted</p></blockquote>"),
    (
        "see https://example.org/x.",
        f'<p>see <a href="https://example.org/x" {NEW_TAB}>https://example.org/x</a>.</p>',
    ),
    ("[t](https://e.org/a)", f'<p><a href="https://e.org/a" {NEW_TAB}>t</a></p>'),
    ("[t](javascript:alert(1))", "<p>[t](javascript:alert(1))</p>"),
    ("[t](data:text/html,x)", "<p>[t](data:text/html,x)</p>"),
    ("snake_case_name and 2 * 3 * 4", "<p>snake_case_name and 2 * 3 * 4</p>"),
]


def test_the_markdown_renderer_builds_only_safe_nodes(tab: Tab) -> None:
    page = tab.open()
    got = page.evaluate(
        """async (cases) => {
          const { renderMarkdown } = await import("./static/markdown.js");
          return cases.map((text) => {
            const div = document.createElement("div");
            div.append(renderMarkdown(text));
            return div.innerHTML;
          });
        }""",
        [text for text, _ in MARKDOWN_CASES],
    )
    assert got == [html for _, html in MARKDOWN_CASES]


# --- access ---------------------------------------------------------------------------------


def test_a_token_protected_bridge_asks_for_the_token(browser: Browser, tmp_path: Path) -> None:
    users = "users:\n  - {name: alice, token_env: ALICE_TOKEN}\n"
    with serving(tmp_path, config(tmp_path, users), env={"ALICE_TOKEN": ALICE}) as served:
        tab = Tab(browser, served.url)
        page = tab.open(ready=False)
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        page.fill("#token", "not-the-token-at-all")
        page.click("#token-save")
        expect(page.locator("#token-reason")).to_contain_text("did not accept")
        page.fill("#token", ALICE)
        page.click("#token-save")
        expect(dialog).to_be_hidden()
        tab.start("echo", "signed in")
        assert tab.finished(1) == "You said: signed in"
        assert page.evaluate("localStorage.getItem('agentproc.token')") == ALICE
        assert not [url for url, _ in tab.requests if ALICE in url], "the token is never in a URL"
        streams = [h for url, h in tab.requests if url.endswith("/events")]
        assert streams and all(h.get("authorization") == f"Bearer {ALICE}" for h in streams)

        page.reload()  # the token is remembered
        assert tab.finished(1) == "You said: signed in"
        page.click("#sign-out")
        expect(dialog).to_be_visible()
        assert page.evaluate("localStorage.getItem('agentproc.token')") is None
        with httpx.Client(base_url=served.url) as c:
            assert c.get("/v1/routes").status_code == 401
        tab.close()


# --- a phone's screen -----------------------------------------------------------------------


def test_on_a_phone_nothing_scrolls_sideways_and_the_box_is_in_view(
    browser: Browser, server: Served
) -> None:
    tab = Tab(browser, server.url, viewport={"width": 375, "height": 700}, has_touch=True)
    page = tab.open()
    expect(page.locator("#sidebar")).to_be_hidden()
    page.click("#nav-toggle")
    expect(page.locator("#sidebar")).to_be_visible()
    page.select_option("#route", "echo")
    page.click("#new-conversation")
    expect(page.locator("#sidebar")).to_be_hidden()
    long_word = "x" * 300
    tab.say(f"{long_word}\n```\n{'y' * 300}\n```")
    tab.finished(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate("document.body.scrollWidth") <= 375
    box = page.locator("#message").bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= 700
    for button in ("#send", "#cancel", "#reset", "#nav-toggle"):
        size = page.locator(button).bounding_box()
        assert size and size["height"] >= 44 and size["width"] >= 44, (button, size)
    tab.close()
