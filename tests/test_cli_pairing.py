"""``agentproc pairing``: approving, denying, listing and revoking the codes
a chat channel gives to people it does not know, in a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from helpers import check_stderr, cli

from bridge.store.sqlite import open_store


def ask(data: Path, channel: str, user: str, name: str) -> str:
    async def go() -> str:
        async with open_store(data) as store:
            p = await store.request_pairing(channel, user, name)
            assert p is not None
            return p.code

    return anyio.run(go)


def paired(data: Path, channel: str, user: str) -> bool:
    async def go() -> bool:
        async with open_store(data) as store:
            return await store.paired(channel, user)

    return anyio.run(go)


def test_an_admin_approves_a_code_as_typed_and_the_person_is_paired(tmp_path: Path) -> None:
    code = ask(tmp_path, "telegram", "42", "Ann (@ann)")
    listed = cli("pairing", "list", "--data-dir", tmp_path)
    assert listed.code == 0 and code in listed.out and "Ann (@ann)" in listed.out, listed
    assert "waiting" in listed.out
    typed = f"{code[:4].lower()} {code[4:]}"
    ok = cli("pairing", "approve", typed, "--data-dir", tmp_path)
    assert ok.code == 0 and "paired: Ann (@ann) (42) on telegram" in ok.out, ok
    assert paired(tmp_path, "telegram", "42")
    again = cli("pairing", "approve", code, "--data-dir", tmp_path)
    assert again.code == 1 and "no code" in again.err and "pairing list" in again.err, again
    check_stderr(again.err)
    rows = cli("pairing", "list", "--json", "--data-dir", tmp_path).out.splitlines()
    assert [json.loads(r)["status"] for r in rows] == ["approved"]
    gone = cli("pairing", "revoke", "telegram", "42", "--data-dir", tmp_path)
    assert gone.code == 0 and not paired(tmp_path, "telegram", "42"), gone
    twice = cli("pairing", "revoke", "telegram", "42", "--data-dir", tmp_path)
    assert twice.code == 1 and "not paired" in twice.err, twice


def test_a_denied_or_unknown_code_pairs_nobody(tmp_path: Path) -> None:
    code = ask(tmp_path, "telegram", "7", "Bob")
    no = cli("pairing", "deny", code, "--data-dir", tmp_path)
    assert no.code == 0 and "refused: Bob (7) on telegram" in no.out, no
    assert not paired(tmp_path, "telegram", "7")
    unknown = cli("pairing", "approve", "ZZZZ2222", "--data-dir", tmp_path)
    assert unknown.code == 1 and "expired" in unknown.err, unknown
    empty = cli("pairing", "list", "--data-dir", tmp_path)
    assert empty.code == 0 and "nobody paired" in empty.out, empty
    bad = cli("pairing", "approve", "--data-dir", tmp_path)
    assert bad.code == 2 and "CODE" in bad.err, bad
