// One conversation on screen: its transcript, then its events as they come.
//
// A turn is drawn once and then updated in place: the user's message, the
// agent's reply (streamed text first, replaced by the final reply when the
// turn completes), and any approval cards. Each event is applied at most
// once: stored events by id, streamed text by its character offset in the
// turn, so a replay after a reconnect can never show text twice.

import { renderMarkdown } from "./markdown.js";

const STATUS_WORDS = {
  queued: "waiting for its turn…",
  running: "working…",
  ok: "",
  error: "failed",
  timeout: "timed out",
  cancelled: "cancelled",
  abandoned: "abandoned: the bridge stopped while it ran",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function time(seconds) {
  const d = new Date(seconds * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class ChatView {
  // onAnswer(approvalId, decision) answers an approval; it returns a promise.
  constructor(log, { onAnswer }) {
    this.log = log;
    this.onAnswer = onAnswer;
    this.clear();
  }

  clear() {
    this.log.replaceChildren();
    this.turns = new Map(); // turn number -> its parts on screen
    this.messages = new Map(); // message event id -> its bubble
    this.pending = new Map(); // idempotency key -> bubble of a message being sent
    this.cards = new Map(); // permission event id -> approval card
    this.lastStored = 0; // the highest stored event id applied
    this.frame = 0;
  }

  get running() {
    for (const t of this.turns.values()) if (!t.done) return true;
    return false;
  }

  // --- drawing ------------------------------------------------------------

  append(node) {
    const nearBottom =
      this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
    this.log.append(node);
    if (nearBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  userBubble(text, who) {
    const bubble = el("div", "msg user");
    const body = el("div", "body");
    body.append(renderMarkdown(text));
    const meta = el("div", "meta", who && who !== "local" ? who : "");
    bubble.append(body, meta);
    return bubble;
  }

  notice(text) {
    this.append(el("div", "notice", text));
  }

  turn(number) {
    let t = this.turns.get(number);
    if (t) return t;
    const node = el("div", "msg agent");
    node.dataset.turn = String(number);
    const body = el("div", "body");
    body.setAttribute("aria-live", "polite");
    const approvals = el("div", "approvals");
    const meta = el("div", "meta");
    node.append(body, approvals, meta);
    t = { number, node, body, approvals, meta, text: "", done: false };
    this.turns.set(number, t);
    this.setStatus(t, "queued");
    this.append(node);
    return t;
  }

  setStatus(t, status, detail = "") {
    t.node.dataset.status = status;
    t.body.setAttribute("aria-busy", String(status === "queued" || status === "running"));
    t.meta.textContent = [STATUS_WORDS[status] ?? status, detail].filter(Boolean).join(" ");
  }

  paint(t) {
    // Streamed text is re-rendered at most once a frame, however fast it comes.
    t.dirty = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const turn of this.turns.values()) {
        if (!turn.dirty) continue;
        turn.dirty = false;
        turn.body.replaceChildren(renderMarkdown(turn.text));
      }
    });
  }

  finish(t, data, at = 0) {
    t.done = true;
    t.dirty = false;
    const reply = data.reply || (data.status === "ok" ? "" : t.text);
    t.text = reply;
    t.body.replaceChildren(renderMarkdown(reply));
    if (data.error) {
      const error = el("div", "error-text", data.error);
      if (data.hint) error.append(el("div", "hint", data.hint));
      t.body.append(error);
    }
    this.setStatus(t, data.status || "ok");
    if (at) t.meta.textContent = [t.meta.textContent, time(at)].filter(Boolean).join(" · ");
    for (const card of t.approvals.querySelectorAll(".approval:not(.answered)")) {
      card.classList.add("answered");
      for (const b of card.querySelectorAll("button")) b.disabled = true;
    }
  }

  // --- the transcript ----------------------------------------------------------

  showTranscript(turns) {
    for (const past of turns) {
      const who = (past.from_users || []).join(", ");
      this.append(this.userBubble(past.message, who));
      this.finish(this.turn(past.turn), past, past.started_at);
    }
    this.log.scrollTop = this.log.scrollHeight;
  }

  // --- sending ----------------------------------------------------------------

  // A bubble for a message on its way, known by its idempotency key until the
  // log has it.
  sending(key, text) {
    const bubble = this.userBubble(text, "");
    bubble.classList.add("sending");
    bubble.querySelector(".meta").textContent = "sending…";
    this.pending.set(key, bubble);
    this.append(bubble);
    return bubble;
  }

  sent(key, messageId) {
    const bubble = this.pending.get(key);
    if (!bubble) return;
    this.pending.delete(key);
    const known = this.messages.get(messageId);
    if (known && known !== bubble) {
      bubble.remove(); // the stream drew it first
      return;
    }
    this.messages.set(messageId, bubble);
    bubble.classList.remove("sending", "failed");
    bubble.querySelector(".meta").textContent = "";
  }

  failed(key, error, retry) {
    const bubble = this.pending.get(key);
    if (!bubble) return;
    bubble.classList.remove("sending");
    bubble.classList.add("failed");
    const meta = bubble.querySelector(".meta");
    meta.replaceChildren(el("span", "", `not sent: ${error.message}. `));
    const again = el("button", "link-button", "Retry");
    again.type = "button";
    again.addEventListener("click", () => {
      bubble.classList.replace("failed", "sending");
      meta.textContent = "sending…";
      retry();
    });
    meta.append(again);
  }

  // --- events -----------------------------------------------------------------

  handle(type, event) {
    if (!event || typeof event !== "object") return;
    const data = event.data || {};
    const stored = !event.live;
    if (stored) {
      if (event.id <= this.lastStored) return; // seen already (a replay overlap)
      this.lastStored = event.id;
    }
    const past = event.turn && this.turns.get(event.turn);
    if (past && past.done) {
      // A turn the transcript showed already, read again from the log.
      if (type === "turn.queued") this.forget(data.messages || []);
      return;
    }
    switch (type) {
      case "message":
        return this.onMessage(event, data);
      case "turn.queued":
        return this.onQueued(event, data);
      case "turn.started":
        return this.setStatus(this.turn(event.turn), "running");
      case "turn.partial":
        return this.onPartial(this.turn(event.turn), data);
      case "turn.permission":
        return this.onPermission(this.turn(event.turn), event, data);
      case "turn.permission_answered":
        return this.onAnswered(data);
      case "turn.completed":
        return this.finish(this.turn(event.turn), data, event.at);
      case "conversation.cancel":
        return this.onCancel(data);
      case "conversation.reset":
        return this.notice("New agent session: the agent starts afresh from here.");
      case "log.trimmed":
        return this.notice("Older events were removed from the log and are not shown.");
      default:
        return undefined; // delivery.* and what later versions add
    }
  }

  onMessage(event, data) {
    if (this.messages.has(event.id)) return;
    const mine = data.platform_id && this.pending.get(data.platform_id);
    if (mine) {
      this.sent(data.platform_id, event.id);
      return;
    }
    const bubble = this.userBubble(data.text || "", data.from_user);
    this.messages.set(event.id, bubble);
    this.append(bubble);
  }

  forget(ids) {
    for (const id of ids) {
      const bubble = this.messages.get(id);
      if (bubble) bubble.remove();
      this.messages.delete(id);
    }
  }

  onQueued(event, data) {
    const ids = data.messages || [];
    if (!ids.some((id) => this.messages.has(id))) {
      // Its messages came before where this view started reading.
      const bubble = this.userBubble(data.text || "", (data.from_users || []).join(", "));
      for (const id of ids) this.messages.set(id, bubble);
      this.append(bubble);
    }
    this.turn(event.turn);
  }

  onPartial(t, data) {
    const text = String(data.text || "");
    const offset = Number(data.offset || 0);
    const have = t.text.length;
    if (offset + text.length <= have) return; // already shown
    if (offset > have) {
      // A gap means a chunk was never seen: say so rather than join text wrongly.
      t.text += "…";
    }
    t.text += text.slice(Math.max(0, have - offset));
    if (t.node.dataset.status === "queued") this.setStatus(t, "running");
    this.paint(t);
  }

  onPermission(t, event, data) {
    if (this.cards.has(event.id)) return;
    const card = el("section", "approval");
    card.dataset.approval = event.approval_id || "";
    card.setAttribute("aria-label", `Approval request: ${data.tool}`);
    const title = el("div", "approval-title");
    title.append("The agent asks to use ", el("strong", "tool", String(data.tool || "a tool")));
    card.append(title);
    if (data.description) card.append(el("p", "description", String(data.description)));
    const input = el("pre", "input");
    input.textContent = JSON.stringify(data.input ?? {}, null, 2);
    card.append(input);
    const actions = el("div", "actions");
    const answer = el("div", "answer", "");
    answer.setAttribute("role", "status");
    for (const [label, decision] of [
      ["Allow", "allow"],
      ["Deny", "deny"],
    ]) {
      const button = el("button", decision, label);
      button.type = "button";
      button.addEventListener("click", async () => {
        for (const b of actions.querySelectorAll("button")) b.disabled = true;
        answer.textContent = "sending…";
        try {
          const out = await this.onAnswer(event.approval_id, decision);
          if (out && !out.answered) answer.textContent = "already answered, or its turn ended";
        } catch (error) {
          answer.textContent = `${error.message}${error.hint ? ` (${error.hint})` : ""}`;
          if (!card.classList.contains("answered")) {
            for (const b of actions.querySelectorAll("button")) b.disabled = false;
          }
        }
      });
      actions.append(button);
    }
    if (data.deadline) {
      actions.append(el("span", "deadline", `denied at ${time(data.deadline)} if unanswered`));
    }
    card.append(actions, answer);
    this.cards.set(event.id, { card, answer, actions });
    t.approvals.append(card);
    this.log.scrollTop = this.log.scrollHeight;
  }

  onAnswered(data) {
    const found = this.cards.get(Number(data.request));
    if (!found) return;
    found.card.classList.add("answered");
    found.card.dataset.decision = data.allow ? "allow" : "deny";
    for (const b of found.actions.querySelectorAll("button")) b.disabled = true;
    const who = data.by ? ` by ${data.by}` : "";
    found.answer.textContent = `${data.allow ? "Allowed" : "Denied"}${who}.`;
  }

  onCancel(data) {
    for (const id of data.dropped || []) {
      const bubble = this.messages.get(id);
      if (bubble) {
        bubble.classList.add("dropped");
        bubble.querySelector(".meta").textContent = "dropped by cancel";
      }
    }
  }
}
