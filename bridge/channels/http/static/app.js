// The web chat page: a list of the caller's conversations, one conversation
// open at a time (its history, then its events live), a message box, the
// sign-in a token-protected bridge needs, and for admins the people waiting
// to be let in by a chat channel. The open conversation's id is kept
// in the URL's fragment, so a reload comes back to it.

import { ApiError, api, getToken, newKey, setToken } from "./api.js";
import { ChatView } from "./chat.js";
import { PairingPanel } from "./pairings.js";
import { EventStream } from "./stream.js";

const $ = (id) => document.getElementById(id);

// Sends of one message before it is shown as not sent (each with its key).
const SEND_TRIES = 4;
const SEND_BACKOFF_MS = [500, 1000, 2000];

const state = {
  routes: [],
  conversations: [],
  current: null, // the open conversation, or null: a new one, made by its first message
  stream: null,
  view: null,
  pairings: null,
};

// --- errors and sign-in --------------------------------------------------------

function showError(error) {
  if (error instanceof ApiError && error.status === 401) {
    askToken(error);
    return;
  }
  $("error-message").textContent = error.message || String(error);
  $("error-hint").textContent = error.hint || "";
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

let asking = false;

function askToken(error) {
  if (asking) return;
  asking = true;
  const had = Boolean(getToken());
  $("token-reason").textContent = had
    ? `The bridge did not accept the token: ${error.message}.`
    : "This bridge needs your access token.";
  $("token").value = "";
  $("token-dialog").showModal();
}

$("token-form").addEventListener("submit", () => {
  setToken($("token").value.trim());
  asking = false;
  start();
});

$("token-dialog").addEventListener("cancel", () => {
  asking = false;
});

$("sign-out").addEventListener("click", () => {
  setToken("");
  closeStream();
  state.current = null;
  history.replaceState(null, "", location.pathname);
  start();
});

// --- the conversation list ------------------------------------------------------------

function labelOf(c) {
  if (c.title) return c.title;
  const when = new Date(c.created_at * 1000).toLocaleString([], {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
  return `${c.route} · ${when}`;
}

function drawList() {
  const list = $("conversations");
  list.replaceChildren();
  const sorted = [...state.conversations].sort((a, b) => b.updated_at - a.updated_at);
  for (const c of sorted) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation";
    button.dataset.id = c.id;
    if (state.current && state.current.id === c.id) button.setAttribute("aria-current", "true");
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = labelOf(c);
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${c.route}${c.status === "idle" ? "" : ` · ${c.status}`}`;
    button.append(title, meta);
    button.addEventListener("click", () => open(c.id));
    item.append(button);
    list.append(item);
  }
  $("no-conversations").hidden = sorted.length > 0;
}

async function refreshList() {
  try {
    state.conversations = await api.conversations();
    drawList();
  } catch (error) {
    showError(error);
  }
}

function drawRoutes() {
  const select = $("route");
  select.replaceChildren();
  for (const r of state.routes) {
    const option = document.createElement("option");
    option.value = r.name;
    option.textContent = r.title && r.title !== r.name ? `${r.title} (${r.name})` : r.name;
    option.selected = r.default;
    select.append(option);
  }
}

// --- the open conversation ------------------------------------------------------------

function closeStream() {
  if (state.stream) state.stream.stop();
  state.stream = null;
  setConn("idle");
}

function setConn(status) {
  const conn = $("conn");
  conn.dataset.state = status;
  conn.textContent = { live: "live", reconnecting: "reconnecting…" }[status] || "";
}

function setNav(openNav) {
  document.body.classList.toggle("nav-open", openNav);
  $("nav-toggle").setAttribute("aria-expanded", String(openNav));
}

function setTitle(text) {
  $("conversation-title").textContent = text;
  document.title = text ? `${text} · agentproc` : "agentproc";
}

function drawTools() {
  const has = Boolean(state.current);
  $("cancel").disabled = !has;
  $("reset").disabled = !has;
}

function startDraft() {
  closeStream();
  state.current = null;
  state.view.clear();
  history.replaceState(null, "", location.pathname);
  setTitle(`New conversation with ${$("route").value}`);
  drawTools();
  drawList();
  setNav(false);
  $("message").focus();
}

async function open(id) {
  clearError();
  closeStream();
  setNav(false);
  let conv;
  let turns;
  try {
    // The conversation first, then its transcript: a turn that ends between
    // the two is in the transcript and read again from the log, which the
    // view recognises; the other order could miss it.
    conv = await api.conversation(id);
    turns = await api.turns(id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      history.replaceState(null, "", location.pathname);
    }
    showError(error);
    return;
  }
  state.current = conv;
  state.view.clear();
  history.replaceState(null, "", `#c=${encodeURIComponent(id)}`);
  setTitle(labelOf(conv));
  drawTools();
  drawList();
  state.view.showTranscript(turns);
  // An idle conversation's history is all in the transcript: read on from its
  // last event. One with a turn under way is read from the start, so the
  // running turn's message and streamed text are shown too.
  const from = conv.status === "idle" ? conv.last_event : 0;
  follow(conv.id, from);
}

function follow(id, from) {
  state.stream = new EventStream(api.eventsUrl(id), from, {
    onEvent: (type, event) => {
      state.view.handle(type, event);
      if (type === "turn.queued" || type === "turn.completed") refreshList();
    },
    onState: setConn,
    onError: (error) => showError(error),
  }).start();
}

// --- sending --------------------------------------------------------------------

function titleFrom(text) {
  const line = text.trim().split("\n")[0];
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

async function deliver(id, text, key) {
  for (let attempt = 0; ; attempt++) {
    try {
      const accepted = await api.send(id, text, key);
      state.view.sent(key, accepted.message_id);
      return;
    } catch (error) {
      const again = error instanceof ApiError && error.retryable && attempt + 1 < SEND_TRIES;
      if (!again) {
        if (state.current && state.current.id === id) {
          // Retrying sends the same key: the bridge takes the message once.
          state.view.failed(key, error, () => deliver(id, text, key));
        }
        showError(error);
        return;
      }
      await new Promise((r) => setTimeout(r, SEND_BACKOFF_MS[attempt]));
    }
  }
}

let creating = false;

async function send() {
  const box = $("message");
  const text = box.value;
  if (!text.trim() || creating) return;
  clearError();
  if (!state.current) {
    // The conversation is made with the first message, titled by it.
    const route = $("route").value;
    creating = true;
    try {
      const conv = await api.create(route, titleFrom(text));
      state.conversations.push(conv);
      await open(conv.id);
    } catch (error) {
      showError(error);
      return;
    } finally {
      creating = false;
    }
    if (!state.current) return;
  }
  box.value = "";
  const key = newKey();
  state.view.sending(key, text);
  await deliver(state.current.id, text, key);
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});

$("message").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});

// --- buttons --------------------------------------------------------------------

async function act(work) {
  if (!state.current) return;
  clearError();
  try {
    await work(state.current.id);
  } catch (error) {
    showError(error);
  }
}

$("cancel").addEventListener("click", () => act(api.cancel));
$("reset").addEventListener("click", () => act(api.reset));
$("error-close").addEventListener("click", clearError);
$("nav-toggle").addEventListener("click", () => {
  setNav(!document.body.classList.contains("nav-open"));
});
$("new-form").addEventListener("submit", (e) => {
  e.preventDefault();
  startDraft();
});
$("route").addEventListener("change", () => {
  if (!state.current) setTitle(`New conversation with ${$("route").value}`);
});
// On a phone the list covers the chat: a tap beside it closes it.
document.querySelector(".main").addEventListener("click", () => setNav(false));

window.addEventListener("offline", () => state.stream && state.stream.drop());
window.addEventListener("online", () => state.stream && state.stream.retryNow());
window.addEventListener("focus", () => {
  if (!asking && state.routes.length) refreshList();
});

// --- start ------------------------------------------------------------------------

async function start() {
  clearError();
  state.pairings.stop(); // until the bridge says who is signed in now
  $("sign-out").hidden = !getToken();
  try {
    state.routes = await api.routes();
    state.conversations = await api.conversations();
  } catch (error) {
    showError(error);
    return;
  }
  drawRoutes();
  drawList();
  state.pairings.start();
  const wanted = linked();
  if (wanted) await open(wanted);
  else startDraft();
}

// The conversation the URL's fragment names (#c=ID), if any.
function linked() {
  return new URLSearchParams(location.hash.slice(1)).get("c");
}

// A link to a conversation (#c=ID) opens it.
window.addEventListener("hashchange", () => {
  const wanted = linked();
  if (wanted && (!state.current || state.current.id !== wanted)) open(wanted);
});

state.view = new ChatView($("log"), {
  onAnswer: (approvalId, decision) => api.answer(approvalId, decision),
});
state.pairings = new PairingPanel($("pairings"), { leave: () => $("message").focus() });
start();
