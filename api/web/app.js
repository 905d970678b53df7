// TuneGraph's search page: type-ahead, one mixed result list, provenance, related artists, feedback.
"use strict";
const $ = (id) => document.getElementById(id);
const q = $("q"), kinds = $("kinds"), results = $("results"), statusLine = $("status");
const suggestions = $("suggestions");
let page = null;          // the last search page shown
let suggestTimer = null, suggestSeq = 0, selected = -1;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

// -- type-ahead --------------------------------------------------------------------------------
function hideSuggestions() { suggestions.hidden = true; suggestions.replaceChildren(); selected = -1; }

async function suggest() {
  const text = q.value.trim();
  if (!text) { hideSuggestions(); return; }
  const seq = ++suggestSeq;
  const params = new URLSearchParams({ q: text, limit: "8" });
  if (kinds.value) params.set("kinds", kinds.value);
  try {
    const body = await getJSON(`/v1/suggest?${params}`);
    if (seq !== suggestSeq) return;  // a newer keystroke won
    suggestions.replaceChildren(...body.items.map((s, i) => el("li", {
      role: "option", "data-name": s.name, id: `sugg-${i}`,
      onmousedown: (ev) => { ev.preventDefault(); q.value = s.name; hideSuggestions(); search(); },
    }, el("span", { class: `kind ${s.kind}` }, s.kind), s.name)));
    suggestions.hidden = body.items.length === 0;
  } catch { hideSuggestions(); }
}

q.addEventListener("input", () => { clearTimeout(suggestTimer); suggestTimer = setTimeout(suggest, 60); });
q.addEventListener("keydown", (ev) => {
  const items = [...suggestions.children];
  if (suggestions.hidden || !items.length) return;
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    selected = (selected + (ev.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
    items.forEach((li, i) => li.setAttribute("aria-selected", String(i === selected)));
  } else if (ev.key === "Enter" && selected >= 0) {
    q.value = items[selected].dataset.name;
  } else if (ev.key === "Escape") { ev.preventDefault(); hideSuggestions(); }  // keep the text
});
q.addEventListener("blur", () => setTimeout(hideSuggestions, 100));

// -- search ------------------------------------------------------------------------------------
async function search() {
  hideSuggestions();
  const text = q.value.trim();
  if (!text) return;
  $("related-view").hidden = true; results.hidden = false;
  const params = new URLSearchParams({ q: text, limit: "20", debug: "true" });
  if (kinds.value) params.set("kinds", kinds.value);
  statusLine.textContent = "Searching…"; statusLine.className = "";
  try {
    page = await getJSON(`/v1/search?${params}`);
  } catch (err) { statusLine.textContent = `Search failed: ${err.message}`; return; }
  const reading = page.interpretations[0];
  statusLine.textContent = `${page.items.length} results` +
    (reading ? ` · understood as ${reading.explanation}` : "") +
    (page.degraded ? " · some sources were unavailable; results may be incomplete" : "");
  if (page.degraded) statusLine.className = "degraded";
  results.replaceChildren(...page.items.map(card));
}

function card(item, position) {
  const related = item.related && item.related.length
    ? el("div", { class: "related" }, `${item.related_label}: `,
      ...item.related.map((r) => el("span", { class: "chip" }, r.name)))
    : "";
  const actions = el("div", { class: "actions" },
    el("button", { type: "button", class: "play", onclick: () => send(item, position, "play") }, "▶ Play"),
    el("button", { type: "button", class: "like", onclick: () => send(item, position, "like") }, "♥"));
  if (item.kind === "artist") {
    actions.append(el("button", { type: "button", class: "related-artists",
      onclick: () => { send(item, position, "click"); relatedArtists(item); } }, "Related artists"));
  }
  const why = el("details", { class: "why" }, el("summary", {}, "Why this result"),
    el("table", {}, el("tr", {}, el("th", {}, "source"), el("th", {}, "rank"), el("th", {}, "score"), el("th", {}, "reason")),
      ...(item.provenance || []).map((p) => el("tr", {}, el("td", {}, p.source), el("td", {}, p.rank + 1),
        el("td", {}, p.score.toFixed(3)), el("td", {}, p.reason)))),
    el("div", {}, `plan ${page.debug ? page.debug.policy : ""}, propensity ${page.debug ? page.debug.propensity : ""}`));
  return el("li", { class: "card", "data-id": item.id, "data-kind": item.kind },
    el("div", { class: "top" }, el("span", { class: `kind ${item.kind}` }, item.kind),
      el("a", { class: "name", href: "#", onclick: (ev) => { ev.preventDefault(); send(item, position, "click"); } }, item.name),
      actions),
    el("div", { class: "subtitle" }, item.subtitle,
      item.other_versions ? el("span", { class: "versions" },
        ` · ${item.other_versions} other version${item.other_versions === 1 ? "" : "s"}`) : ""),
    related, why);
}

async function send(item, position, action) {
  if (!page) return;
  try {
    await getJSON("/v1/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ search_id: page.search_id, entity_id: item.id, action, position }) });
    statusLine.textContent = `Noted: ${action} on ${item.name}`;
  } catch (err) { statusLine.textContent = `Feedback failed: ${err.message}`; }
}

async function relatedArtists(item) {
  try {
    const body = await getJSON(`/v1/artists/${encodeURIComponent(item.id)}/related?limit=12`);
    $("related-title").textContent = `Artists related to ${body.artist.name}`;
    $("related-list").replaceChildren(...body.items.map((a) => el("li", { class: "card", "data-id": a.id },
      el("div", { class: "top" }, el("span", { class: "kind artist" }, "artist"), el("span", { class: "name" }, a.name)),
      el("div", { class: "subtitle" }, a.subtitle),
      el("div", { class: "related" }, a.reasons.join(" · ")))));
    results.hidden = true; $("related-view").hidden = false;
  } catch (err) { statusLine.textContent = `Related artists failed: ${err.message}`; }
}

$("related-close").addEventListener("click", () => { $("related-view").hidden = true; results.hidden = false; });
$("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
kinds.addEventListener("change", () => { if (q.value.trim()) search(); });
