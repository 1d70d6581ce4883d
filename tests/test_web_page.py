"""The web chat page, driven in a real headless Chromium against ``agentproc serve``
(see web_kit: Debian's chromium, never a browser Playwright downloads). Each
test runs in a fresh browser context, with its own storage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import anyio
import httpx
import pytest
from fake_telegram import Chat, FakeTelegram, User
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

from bridge.store.records import Pairing
from bridge.store.sqlite import open_store


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


# --- letting chat strangers in (admins) -----------------------------------------------------

BOB = "bob-token-0123456789abcdef"
BOT_TOKEN = "123456:AAweb-pairing_token"


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=BOT_TOKEN) as tg:
        yield tg


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegram) -> Iterator[Served]:
    """alice (an admin) and bob (not one) on the web; a Telegram bot (against
    the fake Bot API) that gives strangers pairing codes."""
    tmp = tmp_path_factory.mktemp("pairing")
    users = (
        "users:\n"
        "  - {name: alice, token_env: ALICE_TOKEN, admin: true}\n"
        "  - {name: bob, token_env: BOB_TOKEN}\n"
    )
    bot = f"{{token_env: BOT_TOKEN, api_base: '{telegram.api_base}', route: echo, poll_timeout: 1}}"
    text = config(tmp, users) + f"channels:\n  telegram: {bot}\n"
    env = {"ALICE_TOKEN": ALICE, "BOB_TOKEN": BOB, "BOT_TOKEN": BOT_TOKEN}
    with serving(tmp, text, env=env, token=ALICE) as served:
        yield served


@pytest.fixture
def nobody_waiting(bridge: Served) -> Iterator[None]:
    """After the test, every code still waiting is denied: at most five may
    wait on a channel, and the next test starts with none."""
    yield
    with bridge.client() as c:
        for p in c.get("/v1/pairings").json():
            if p["status"] == "pending":
                c.post(f"/v1/pairings/{p['code']}", json={"decision": "deny"})


@pytest.fixture
def admin(browser: Browser, bridge: Served, nobody_waiting: None) -> Iterator[Tab]:
    """A page signed in as alice, an admin."""
    opened = Tab(browser, bridge.url, token=ALICE)
    yield opened
    opened.close()


def stranger(
    tg: FakeTelegram, bridge: Served, first_name: str, **person: str
) -> tuple[User, Chat, str]:
    """Someone the bot does not know writes to it privately: them, their
    chat, and the code the bot gave them (as the API lists it)."""
    someone = tg.user(first_name, **person)
    chat = tg.private_chat(someone)
    tg.send_user_message(chat, someone, "hello?")
    tg.wait_for(lambda: tg.bot_messages(chat))
    with bridge.client() as c:
        mine = [p for p in c.get("/v1/pairings").json() if p["user_id"] == str(someone.id)]
    assert len(mine) == 1 and mine[0]["status"] == "pending", mine
    return someone, chat, mine[0]["code"]


def stored(bridge: Served) -> dict[str, Pairing]:
    """The Telegram pairings that still count, as the store has them."""

    async def read() -> dict[str, Pairing]:
        async with open_store(bridge.data_dir) as store:
            return {p.code: p for p in await store.pairings("telegram")}

    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(1) as other:
        return other.submit(anyio.run, read).result()


def epoch(iso: str) -> float:
    """Seconds since the epoch of a time the page wrote as ISO 8601."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_an_admin_approves_a_stranger_on_the_page_and_the_bot_answers_them(
    admin: Tab, bridge: Served, telegram: FakeTelegram
) -> None:
    eve, chat, code = stranger(telegram, bridge, "Eve", username="eve")
    page = admin.open()
    panel = page.get_by_role("region", name="People waiting to be let in")
    expect(panel).to_be_visible()
    row = panel.locator(f'.pairing[data-code="{code}"]')
    expect(row.locator(".name")).to_have_text("Eve (@eve)")
    expect(row.locator(".channel")).to_have_text("telegram")
    expect(row.locator(".user-id")).to_have_text(str(eve.id))
    expect(row.locator(".code")).to_have_text(code)
    until = time.time() + 3600
    shown = row.locator("time").get_attribute("datetime") or ""
    assert abs(epoch(shown) - until) < 120, shown
    row.get_by_role("button", name="Approve Eve (@eve) on telegram").click()
    status = panel.get_by_role("status")
    expect(status).to_have_text("Eve (@eve) is let in: the agent now answers them on telegram.")
    expect(row).to_have_count(0)
    approved = stored(bridge)[code]
    assert (approved.status, approved.decided_by, approved.name) == (
        "approved",
        "alice",
        "Eve (@eve)",
    )

    telegram.send_user_message(chat, eve, "now?")
    reply = telegram.wait_for(lambda: [m for m in telegram.bot_messages(chat) if "now?" in m.text])
    assert reply[0].text == "You said: now?"


def test_deny_from_the_keyboard_and_the_list_is_read_again_after(
    admin: Tab, bridge: Served, telegram: FakeTelegram
) -> None:
    mallory, chat, code = stranger(telegram, bridge, "Mallory")
    page = admin.open()
    deny = page.get_by_role("button", name="Deny Mallory on telegram")
    expect(deny).to_be_visible()
    _, _, later = stranger(telegram, bridge, "Oscar")  # after the page read the list
    deny.focus()
    page.keyboard.press("Enter")
    status = page.locator("#pairing-status")
    expect(status).to_contain_text("Mallory was refused.")
    expect(page.locator(f'.pairing[data-code="{code}"]')).to_have_count(0)
    # Focus stays in the panel, and the list read after the decision has Oscar.
    expect(page.locator("#pairings-title")).to_be_focused()
    oscar = page.locator(f'.pairing[data-code="{later}"]')
    expect(oscar).to_be_visible()
    page.keyboard.press("Tab")
    expect(oscar.get_by_role("button", name="Approve Oscar on telegram")).to_be_focused()

    assert code not in stored(bridge)
    # Refused, not let in: writing again gets a new code, not the agent.
    telegram.send_user_message(chat, mallory, "please?")
    telegram.wait_for(lambda: len(telegram.bot_messages(chat)) >= 2)
    with bridge.client() as c:
        again = [p for p in c.get("/v1/pairings").json() if p["user_id"] == str(mallory.id)]
    assert [p["status"] for p in again] == ["pending"] and again[0]["code"] != code
    assert not [m for m in telegram.bot_messages(chat) if "You said" in m.text]


def test_someone_not_an_admin_sees_nothing_of_it(
    browser: Browser, bridge: Served, telegram: FakeTelegram, nobody_waiting: None
) -> None:
    stranger(telegram, bridge, "Nina")
    tab = Tab(browser, bridge.url, token=BOB)
    try:
        with tab.page.expect_response(lambda r: r.url.endswith("/v1/pairings")) as asked:
            page = tab.open()
        assert asked.value.status == 403
        page.wait_for_timeout(300)
        expect(page.locator("#pairings")).to_be_hidden()
        expect(page.locator(".pairing")).to_have_count(0)
        expect(page.locator("#error")).to_be_hidden()
        # Asked once: a 403 is an answer, not something to poll.
        asks = [url for url, _ in tab.requests if "/v1/pairings" in url]
        assert len(asks) == 1, asks
    finally:
        tab.close()


def test_a_name_with_html_in_it_is_shown_as_text(
    admin: Tab, bridge: Served, telegram: FakeTelegram
) -> None:
    evil = "<img src=x onerror=alert(1)><b>Bo</b><script>alert(2)</script>"
    _, _, code = stranger(telegram, bridge, evil, username="bo")
    page = admin.open()
    row = page.locator(f'.pairing[data-code="{code}"]')
    expect(row.locator(".name")).to_have_text(f"{evil} (@bo)")
    expect(row.get_by_role("button", name=f"Deny {evil} (@bo) on telegram")).to_be_visible()
    for tag in ("img", "b", "script"):
        expect(page.locator(f"#pairings {tag}")).to_have_count(0)
    time.sleep(0.3)  # an onerror handler would have fired by now
    assert not admin.dialogs


def test_a_code_decided_elsewhere_meanwhile_is_explained_in_plain_words(
    admin: Tab, bridge: Served, telegram: FakeTelegram
) -> None:
    _, _, code = stranger(telegram, bridge, "Zoe")
    page = admin.open()
    approve = page.get_by_role("button", name="Approve Zoe on telegram")
    expect(approve).to_be_visible()
    with bridge.client() as c:  # another admin was quicker
        assert c.post(f"/v1/pairings/{code}", json={"decision": "deny"}).status_code == 200
    approve.click()
    status = page.locator("#pairing-status")
    expect(status).to_have_text(
        f"Zoe's code {code} is no longer waiting: someone decided it already, or it expired "
        "(codes last an hour). If they write again they get a new code."
    )
    expect(page.locator(f'.pairing[data-code="{code}"]')).to_have_count(0)
    page.get_by_role("button", name="Dismiss the message").click()
    expect(page.locator("#pairings")).to_be_hidden()
    expect(page.locator("#message")).to_be_focused()


def test_a_decision_that_got_no_answer_can_be_made_again(
    admin: Tab, bridge: Served, telegram: FakeTelegram
) -> None:
    _, _, code = stranger(telegram, bridge, "Rita")
    page = admin.open()
    approve = page.get_by_role("button", name="Approve Rita on telegram")
    page.route("**/v1/pairings/*", lambda route: route.abort("connectionreset"))
    approve.click()
    status = page.locator("#pairing-status")
    expect(status).to_have_text(
        "Could not approve Rita: the bridge cannot be reached "
        "(check the network; retrying is safe)."
    )
    expect(approve).to_be_enabled()
    assert stored(bridge)[code].status == "pending"
    page.unroute("**/v1/pairings/*")
    approve.click()
    expect(status).to_contain_text("Rita is let in")
    assert stored(bridge)[code].status == "approved"


def test_the_list_is_read_again_while_the_page_is_open(
    admin: Tab, bridge: Served, telegram: FakeTelegram
) -> None:
    page = admin.page
    page.clock.install()
    with page.expect_response(lambda r: r.url.endswith("/v1/pairings")) as asked:
        admin.open()
    assert asked.value.status == 200
    panel = page.locator("#pairings")
    expect(panel).to_be_hidden()  # nobody waits: nothing to show
    _, _, code = stranger(telegram, bridge, "Lena")
    page.clock.fast_forward(25_000)
    row = page.locator(f'.pairing[data-code="{code}"]')
    expect(row).to_be_visible()
    row.get_by_role("button", name="Approve Lena on telegram").click()
    expect(page.locator("#pairing-status")).to_contain_text("Lena is let in")
    # The outcome stays a while, then the empty panel goes away.
    page.clock.fast_forward(11_000)
    expect(panel).to_be_hidden()


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
