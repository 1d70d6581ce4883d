// The people chat channels keep out until an admin lets them in: a panel
// only admins see, listing the pairing codes that wait, with Approve and Deny.
//
// The API has no "who am I" route; asking for the list is the question. An
// admin gets it (200) and sees the panel whenever someone waits; anyone else
// gets 403 once, and the page asks no more. The list is read again every
// REFRESH_MS while the page is in view, when it comes back into view, and
// after each decision. A decided code never waits again (the store's rule),
// so the codes decided here are kept out of lists that were read before the
// decision landed. Names come from the chat platform, typed by strangers:
// they are only ever set as text.

import { api } from "./api.js";

// Codes last an hour and at most five wait per channel: a look every 20 s
// finds a new one soon enough without loading the bridge.
const REFRESH_MS = 20000;
// How long the outcome of a decision stays in the panel. Errors stay until
// dismissed or the next decision.
const OUTCOME_MS = 10000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function who(p) {
  return p.name || `${p.channel} user ${p.user_id}`;
}

function errorWords(error) {
  return `${error.message}${error.hint ? ` (${error.hint})` : ""}`;
}

export class PairingPanel {
  // root: the panel's section, holding #pairing-list, #pairing-status and
  // #pairing-dismiss. leave(): where focus goes when the panel it was in hides.
  constructor(root, { leave }) {
    this.root = root;
    this.list = root.querySelector("#pairing-list");
    this.status = root.querySelector("#pairing-status");
    this.dismiss = root.querySelector("#pairing-dismiss");
    this.heading = root.querySelector("h2");
    this.leave = leave;
    this.timer = 0;
    this.outcomeTimer = 0;
    this.generation = 0;
    this.active = false;
    this.reset();
    this.dismiss.addEventListener("click", () => {
      this.heading.focus(); // and on, when the panel hides with nothing left in it
      this.say("");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") {
        if (this.active && this.admin !== false) this.refresh();
      } else {
        this.unschedule();
      }
    });
  }

  reset() {
    this.admin = null; // unknown until the first answer
    this.rows = new Map(); // code -> { pairing, node, buttons, busy }
    this.gone = new Set(); // codes decided (or found gone) from this page
    this.list.replaceChildren();
    this.say("");
  }

  // (Re)start for whoever is signed in now: after sign-in or sign-out the
  // caller may be someone else, so what the last one saw is dropped.
  start() {
    this.stop();
    this.active = true;
    this.refresh();
  }

  // Hidden and quiet; answers still on their way are dropped.
  stop() {
    this.generation += 1;
    this.active = false;
    this.unschedule();
    this.reset();
  }

  unschedule() {
    clearTimeout(this.timer);
    this.timer = 0;
  }

  schedule() {
    this.unschedule();
    // Not known yet (the first look failed): look again; known not to be
    // an admin: never.
    if (this.active && this.admin !== false && document.visibilityState === "visible") {
      this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  async refresh() {
    if (!this.active) return;
    const generation = this.generation;
    let listed;
    try {
      listed = await api.pairings();
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 403 || error.status === 401) {
        // Not an admin (or not signed in: the page asks for the token, and
        // starts this again once it has one).
        this.admin = false;
        this.unschedule();
        this.rows.clear();
        this.list.replaceChildren();
        this.say("");
        return;
      }
      if (this.admin) this.say(`Could not check who is waiting: ${errorWords(error)}.`, "error");
      this.schedule();
      return;
    }
    if (generation !== this.generation) return;
    this.admin = true;
    const waiting = listed.filter((p) => p.status === "pending" && !this.gone.has(p.code));
    this.draw(waiting);
    this.schedule();
  }

  draw(waiting) {
    const codes = new Set(waiting.map((p) => p.code));
    for (const [code, row] of this.rows) {
      if (!codes.has(code) && !row.busy) this.remove(code);
    }
    // The code that runs out first comes first.
    waiting.sort((a, b) => a.expires_at - b.expires_at);
    for (const p of waiting) {
      if (this.rows.has(p.code)) continue;
      const row = this.row(p);
      const after = [...this.rows.values()].find((r) => r.pairing.expires_at > p.expires_at);
      this.list.insertBefore(row.node, after ? after.node : null);
      this.rows.set(p.code, row);
    }
    this.show();
  }

  row(p) {
    const node = el("li", "pairing");
    node.dataset.code = p.code;
    const name = who(p);
    const details = el("div", "who");
    details.append(el("span", "name", name));
    const meta = el("span", "meta");
    const until = new Date(p.expires_at * 1000);
    const time = el(
      "time",
      "",
      until.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    );
    time.dateTime = until.toISOString();
    time.title = until.toLocaleString();
    meta.append(
      el("span", "channel", p.channel),
      " · id ",
      el("span", "user-id", p.user_id),
      " · code ",
      el("code", "code", p.code),
      " · valid until ",
      time,
    );
    details.append(meta);
    const actions = el("div", "actions");
    const buttons = [];
    for (const [label, decision, style] of [
      ["Approve", "approve", "allow"],
      ["Deny", "deny", "deny"],
    ]) {
      const button = el("button", style, label);
      button.type = "button";
      button.dataset.decision = decision;
      // Its label names the person: a list of bare "Approve" buttons would
      // not say whom each one lets in.
      button.setAttribute("aria-label", `${label} ${name} on ${p.channel}`);
      button.addEventListener("click", () => this.decide(p.code, decision));
      buttons.push(button);
      actions.append(button);
    }
    node.append(details, actions);
    return { pairing: p, node, buttons, busy: false };
  }

  // focused: which of its buttons had the focus (-1: none).
  remove(code, focused = -1) {
    const row = this.rows.get(code);
    if (!row) return;
    const index = focused >= 0 ? focused : row.buttons.indexOf(document.activeElement);
    if (index >= 0) this.focusPast(row, index);
    row.node.remove();
    this.rows.delete(code);
  }

  async decide(code, decision) {
    const row = this.rows.get(code);
    if (!row || row.busy) return;
    const p = row.pairing;
    const name = who(p);
    const approve = decision === "approve";
    // Disabling the buttons takes the focus away: where it was is noted first.
    const focused = row.buttons.indexOf(document.activeElement);
    row.busy = true;
    for (const b of row.buttons) b.disabled = true;
    this.say(approve ? `Letting ${name} in…` : `Refusing ${name}…`);
    const generation = this.generation;
    let done = true;
    try {
      await api.decidePairing(code, decision);
      if (generation !== this.generation) return; // signed out meanwhile
      this.say(
        approve
          ? `${name} is let in: the agent now answers them on ${p.channel}.`
          : `${name} was refused. If they write again they get a new code.`,
        "ok",
      );
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 404) {
        this.say(
          `${name}'s code ${code} is no longer waiting: someone decided it already, or it ` +
            "expired (codes last an hour). If they write again they get a new code.",
          "error",
        );
      } else {
        done = false;
        const verb = approve ? "approve" : "refuse";
        this.say(`Could not ${verb} ${name}: ${errorWords(error)}.`, "error");
      }
    }
    row.busy = false;
    if (done) {
      this.gone.add(code);
      this.remove(code, focused);
    } else {
      for (const b of row.buttons) b.disabled = false;
      if (focused >= 0) row.buttons[focused].focus();
    }
    this.show();
    this.refresh();
  }

  // Keyboard users keep their place: focus moves from button number
  // `index` of a row going away to the same button on the next row (or the
  // one before), or to the panel's heading.
  focusPast(row, index) {
    const next = row.node.nextElementSibling || row.node.previousElementSibling;
    const target = next && next.querySelectorAll("button")[index];
    (target || this.heading).focus();
  }

  // What the panel says: kind "ok" fades after OUTCOME_MS, "error" stays
  // until dismissed, anything else until the next message.
  say(text, kind = "") {
    clearTimeout(this.outcomeTimer);
    this.status.textContent = text;
    this.status.dataset.kind = text ? kind : "";
    this.dismiss.hidden = !(text && kind === "error");
    if (text && kind === "ok") {
      this.outcomeTimer = setTimeout(() => this.say(""), OUTCOME_MS);
    }
    this.show();
  }

  show() {
    const visible = Boolean(this.admin) && (this.rows.size > 0 || this.status.textContent !== "");
    if (!visible && this.root.contains(document.activeElement)) this.leave();
    this.root.hidden = !visible;
  }
}
