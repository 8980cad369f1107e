// The chat page's client: a plain OpenAI-style client of this server's /v1 API, streaming.
// Every text that comes from the model or a document is set with textContent, never as HTML.
"use strict";

const KEY_NAME = "ragtune.apiKey";
const $ = (id) => document.getElementById(id);
const state = { model: null, history: [], controller: null, feedback: false };

function storedKey() {
  return sessionStorage.getItem(KEY_NAME) || localStorage.getItem(KEY_NAME) || "";
}

function saveKey() {
  const key = $("key").value;
  sessionStorage.setItem(KEY_NAME, key);
  if ($("remember").checked) localStorage.setItem(KEY_NAME, key);
  else localStorage.removeItem(KEY_NAME);
}

async function loadServer() {
  try {
    const r = await fetch("/readyz");
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
    state.model = body.model;
    state.feedback = Boolean(body.feedback);
    const index = body.index_version ? `index ${body.index_version}` : "no index";
    const system = body.ragtune_system
      ? `run ${body.ragtune_system.run} · system ${body.ragtune_system.system} · `
      : "";
    $("server").textContent = `${system}model ${body.model} · ${body.backend} backend · ${index}`;
  } catch (e) {
    $("server").textContent = `The server is not ready: ${e.message}. Reload the page to retry.`;
  }
}

// One turn in the log, built from the <template>; returns the parts a stream writes into.
function newTurn(question) {
  const node = $("turn").content.firstElementChild.cloneNode(true);
  node.querySelector(".question").textContent = question;
  $("log").append(node);
  node.scrollIntoView({ block: "end" });
  const part = (sel) => node.querySelector(sel);
  return {
    node, text: part(".text"), meta: part(".meta"), error: part(".error"), sources: part(".sources"),
    feedback: part(".feedback"),
  };
}

function showSources(turn, sources) {
  if (!sources || !sources.length) return;
  const list = turn.sources.querySelector("ol");
  list.replaceChildren();
  for (const s of sources) {
    const item = document.createElement("li");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = s.title || s.doc_id;
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = ` — ${s.doc_id} · score ${Number(s.score).toFixed(3)}`;
    summary.append(title, detail);
    const snippet = document.createElement("p");
    snippet.className = "snippet";
    snippet.textContent = s.snippet;
    details.append(summary, snippet);
    if (s.source) {
      const where = document.createElement("p");
      where.className = "detail";
      where.textContent = `source: ${s.source} · chunk ${s.chunk_id}`;
      details.append(where);
    }
    item.append(details);
    list.append(item);
  }
  turn.sources.hidden = false;
}

function showError(turn, message) {
  turn.error.textContent = message;
  turn.error.hidden = false;
}

// The rating buttons of one answer: up sends at once; down opens the correction box (Enter sends it).
function offerFeedback(turn, responseId) {
  const box = turn.feedback;
  const up = box.querySelector(".rate-up");
  const down = box.querySelector(".rate-down");
  const form = box.querySelector(".correction");
  const text = box.querySelector(".correction-text");
  const status = box.querySelector(".feedback-status");
  const send = async (rating, correction) => {
    up.setAttribute("aria-pressed", String(rating === "up"));
    down.setAttribute("aria-pressed", String(rating === "down"));
    status.textContent = "sending…";
    try {
      const body = { response_id: responseId, rating };
      if (correction) body.correction = correction;
      const r = await fetch("/v1/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("key").value}` },
        body: JSON.stringify(body),
      });
      status.textContent = r.ok
        ? `Thank you: saved as ${rating === "up" ? "right" : "wrong"}${correction ? " with your correction" : ""}.`
        : `Not saved: ${await errorMessage(r)}`;
      if (r.ok && rating === "down") form.hidden = true;
    } catch (e) {
      status.textContent = `Not saved: ${e.message}`;
    }
  };
  up.addEventListener("click", () => { form.hidden = true; send("up"); });
  down.addEventListener("click", () => {
    down.setAttribute("aria-pressed", "true");
    up.setAttribute("aria-pressed", "false");
    form.hidden = false;
    text.focus();
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); send("down", text.value.trim()); });
  box.hidden = false;
}

// The API's own error message from a non-2xx response (OpenAI shape: {"error": {"message"}}).
async function errorMessage(response) {
  let text = "";
  try {
    text = await response.text();
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return `${response.status}: ${body.error.message}`;
  } catch (e) { /* not JSON: show the text as it is */ }
  return `${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ""}`;
}

// Read the SSE stream; call onEvent(object) for each `data:` line until [DONE].
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function ask(question) {
  const turn = newTurn(question);
  const messages = [...state.history, { role: "user", content: question }];
  const info = { model: state.model, index: null, finish: null, id: null, failed: false };
  let answer = "";
  turn.node.classList.add("streaming");
  setBusy(true);
  state.controller = new AbortController();
  try {
    if (!state.model) await loadServer();
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("key").value}` },
      body: JSON.stringify({ model: state.model || "", messages, stream: true }),
      signal: state.controller.signal,
    });
    if (!response.ok) {
      showError(turn, await errorMessage(response));
      return;
    }
    await readEvents(response, (event) => {
      if (event.error) {
        showError(turn, event.error.message);
        info.failed = true;
        return;
      }
      if (event.id) info.id = event.id;
      if (event.model) info.model = event.model;
      if (event.ragtune_system) info.system = event.ragtune_system.system;
      if ("sources" in event) {
        info.index = event.index_version;
        showSources(turn, event.sources);
      }
      for (const choice of event.choices || []) {
        if (choice.delta && choice.delta.content) {
          answer += choice.delta.content;
          turn.text.textContent = answer;
        }
        if (choice.finish_reason) info.finish = choice.finish_reason;
      }
    });
    state.history = [...messages, { role: "assistant", content: answer }];
    if (state.feedback && info.id && !info.failed) offerFeedback(turn, info.id);
  } catch (e) {
    showError(turn, e.name === "AbortError" ? "stopped" : `the request failed: ${e.message}`);
  } finally {
    turn.node.classList.remove("streaming");
    const parts = [`model ${info.model || "?"}`, info.index ? `index ${info.index}` : "no index"];
    if (info.system) parts.unshift(`system ${info.system}`);
    if (info.finish === "length") parts.push("cut at the token limit");
    turn.meta.textContent = parts.join(" · ");
    state.controller = null;
    setBusy(false);
  }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  $("log").setAttribute("aria-busy", String(busy));
  if (!busy) $("question").focus();
}

function init() {
  $("key").value = storedKey();
  $("remember").checked = Boolean(localStorage.getItem(KEY_NAME));
  $("key").addEventListener("change", saveKey);
  $("remember").addEventListener("change", saveKey);
  $("key-form").addEventListener("submit", (e) => { e.preventDefault(); saveKey(); $("question").focus(); });
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const question = $("question").value.trim();
    if (!question || state.controller) return;
    saveKey();
    $("question").value = "";
    ask(question);
  });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("ask").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("clear").addEventListener("click", () => {
    state.history = [];
    $("log").replaceChildren();
    $("question").focus();
  });
  loadServer();
}

document.addEventListener("DOMContentLoaded", init);
