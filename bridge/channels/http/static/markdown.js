// A small Markdown renderer that builds DOM nodes and never parses HTML.
//
// Agent and user text only ever reaches the page through createTextNode and
// textContent, so a reply holding "<script>" or an <img onerror=...> shows
// those characters and runs nothing. What it knows: paragraphs (a single
// newline is a line break, as in chat), # headings, fenced code blocks (an
// unclosed fence, as in a reply still streaming, runs to the end), - * + and
// 1. lists, > quotes, **bold**, *italic*, `code`, [links](https://...) and
// bare http(s) URLs. Links go only to http and https; anything else stays text.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
const BULLET = /^ {0,3}([-*+])\s+(.*)$/;
const NUMBERED = /^ {0,3}(\d{1,9})[.)]\s+(.*)$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const BARE_URL = /^https?:\/\/[^\s<>"'`]+/;
// Punctuation that ends a sentence rather than a bare URL.
const URL_TAIL = /[.,;:!?'")\]]+$/;

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// The URL when it is an absolute http(s) one; otherwise null.
export function safeUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

function link(href, children) {
  const a = el("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.append(...children);
  return a;
}

// The closing delimiter of an emphasis run opened at `start`, or -1.
function closing(text, marker, start) {
  let at = start;
  for (;;) {
    at = text.indexOf(marker, at);
    if (at < 0) return -1;
    const before = text[at - 1];
    const after = text[at + marker.length];
    // Closers follow a non-space; a single * must not be half of a **.
    const doubled = marker.length === 1 && (after === marker || before === marker);
    if (at > start && before !== " " && !doubled) {
      // An underscore closes only at a word's end, so snake_case stays text.
      if (marker[0] !== "_" || !after || !/\w/.test(after)) return at;
    }
    at += marker.length;
  }
}

// Inline Markdown of one run of text, as a list of nodes.
export function inline(text) {
  const out = [];
  let plain = "";
  const flush = () => {
    if (plain) out.push(document.createTextNode(plain));
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const rest = text.slice(i);
    if (ch === "\\" && i + 1 < text.length && /[\\`*_[\]()#>~-]/.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === "`") {
      const run = /^`+/.exec(rest)[0];
      const end = text.indexOf(run, i + run.length);
      if (end > 0) {
        flush();
        const code = el("code");
        code.textContent = text.slice(i + run.length, end).replace(/^ (.*) $/, "$1");
        out.push(code);
        i = end + run.length;
        continue;
      }
      plain += run;
      i += run.length;
      continue;
    }
    if (ch === "[") {
      const m = /^\[([^\]\n]+)\]\(\s*<?([^\s)>]+)>?\s*\)/.exec(rest);
      const href = m && safeUrl(m[2]);
      if (href) {
        flush();
        out.push(link(href, inline(m[1])));
        i += m[0].length;
        continue;
      }
    }
    if ((ch === "h" || ch === "H") && (i === 0 || !/\w/.test(text[i - 1]))) {
      const m = BARE_URL.exec(rest);
      if (m) {
        const url = m[0].replace(URL_TAIL, "");
        const href = safeUrl(url);
        if (href) {
          flush();
          out.push(link(href, [document.createTextNode(url)]));
          i += url.length;
          continue;
        }
      }
    }
    if (ch === "*" || ch === "_") {
      const marker = text[i + 1] === ch ? ch + ch : ch;
      const opensWord = ch === "*" || i === 0 || !/\w/.test(text[i - 1]);
      const next = text[i + marker.length];
      if (opensWord && next && next !== " " && next !== ch) {
        const end = closing(text, marker, i + marker.length);
        if (end > 0) {
          flush();
          const node = el(marker.length === 2 ? "strong" : "em");
          node.append(...inline(text.slice(i + marker.length, end)));
          out.push(node);
          i = end + marker.length;
          continue;
        }
      }
    }
    plain += ch;
    i += 1;
  }
  flush();
  return out;
}

// Lines joined by <br>, each rendered inline.
function lines(parent, texts) {
  texts.forEach((line, n) => {
    if (n > 0) parent.append(el("br"));
    parent.append(...inline(line));
  });
  return parent;
}

function listOf(all, start) {
  const first = NUMBERED.exec(all[start]);
  const list = el(first ? "ol" : "ul");
  if (first && first[1] !== "1") list.start = Number(first[1]);
  const pattern = first ? NUMBERED : BULLET;
  let i = start;
  let item = null;
  let itemLines = [];
  const close = () => {
    if (item) list.append(lines(item, itemLines));
  };
  while (i < all.length) {
    const line = all[i];
    const m = pattern.exec(line);
    if (m) {
      close();
      item = el("li");
      itemLines = [m[2]];
    } else if (line.trim() && /^\s{2,}/.test(line) && item) {
      itemLines.push(line.trim()); // a continuation of the item
    } else {
      break;
    }
    i += 1;
  }
  close();
  return [list, i];
}

// Block Markdown of a whole text, as a DocumentFragment.
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const all = String(text).replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < all.length) {
    const line = all[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const body = [];
      i += 1;
      while (i < all.length && !all[i].trim().startsWith(marker)) body.push(all[i++]);
      i += 1; // the closing fence, when there is one
      const pre = el("pre");
      const code = el("code");
      if (fence[2]) code.dataset.lang = fence[2];
      code.textContent = body.join("\n");
      pre.append(code);
      fragment.append(pre);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const h = el(`h${Math.min(heading[1].length + 2, 6)}`);
      h.append(...inline(heading[2]));
      fragment.append(h);
      i += 1;
      continue;
    }
    if (BULLET.exec(line) || NUMBERED.exec(line)) {
      const [list, next] = listOf(all, i);
      fragment.append(list);
      i = next;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < all.length && QUOTE.test(all[i])) quoted.push(QUOTE.exec(all[i++])[1]);
      const q = el("blockquote");
      q.append(renderMarkdown(quoted.join("\n")));
      fragment.append(q);
      continue;
    }
    const para = [];
    while (i < all.length && all[i].trim() && !startsBlock(all[i])) para.push(all[i++]);
    fragment.append(lines(el("p"), para));
  }
  return fragment;
}

function startsBlock(line) {
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    BULLET.test(line) ||
    NUMBERED.test(line) ||
    QUOTE.test(line)
  );
}
