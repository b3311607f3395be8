// whyrec web page. Vanilla JS; every piece of item text is set with textContent (no HTML parsing of data).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "whyrec.token";
  const page = { user: null, lang: "en", k: 10, token: window.localStorage.getItem(TOKEN_KEY) || "" };

  // -- building DOM without HTML strings ------------------------------------------------------
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    children.forEach((child) => node.append(child));
    return node;
  }

  // -- talking to the API ----------------------------------------------------------------------
  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (page.token) options.headers.Authorization = `Bearer ${page.token}`;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (response.status === 401 && path !== "/api/health") askForToken("Enter an access token to continue.");
    if (!response.ok) {
      const error = new Error((data && data.detail) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // -- access: a user token (or the service key), kept in this browser ----------------------------
  function askForToken(message) {
    $("token-form").hidden = false;
    $("token-input").focus();
    say(message, true);
  }

  function tokenUser(token) {
    // a user token is wr1.<id>.<expires>.<base64url user id>.<signature>; the service key has no user
    const parts = token.split(".");
    if (parts.length !== 5 || parts[0] !== "wr1") return null;
    try {
      const bytes = Uint8Array.from(atob(parts[3].replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
      return new TextDecoder().decode(bytes);
    } catch (_) {
      return null;
    }
  }

  function useToken(token) {
    page.token = token.trim();
    if (page.token) window.localStorage.setItem(TOKEN_KEY, page.token);
    else window.localStorage.removeItem(TOKEN_KEY);
  }

  const userPath = (suffix = "") => `/api/users/${enc(page.user)}${suffix}`;
  const sendEvent = (body) => api("POST", userPath("/events"), body);

  function say(message, isError = false) {
    const status = $("status");
    status.textContent = message;
    status.classList.toggle("error", isError);
  }

  async function guarded(button, work) {
    if (button) button.disabled = true;
    try {
      await work();
    } catch (error) {
      say(error.message, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // -- user ------------------------------------------------------------------------------------
  async function loadUser(userId) {
    page.user = userId.trim();
    $("user-input").value = page.user;
    window.history.replaceState(null, "", `?user=${enc(page.user)}&lang=${page.lang}`);
    $("more-like").hidden = true;
    $("answer").hidden = true;
    say(`user ${page.user}`);
    await refreshAll();
  }

  async function refreshAll() {
    await Promise.all([refreshHistory(), refreshInterests(), refreshTimeline(), refreshCards()]);
  }

  async function refreshHistory() {
    const list = $("history");
    try {
      const user = await api("GET", userPath());
      $("history-count").textContent = `(${user.history.length})`;
      const total = user.history.length;
      const rows = user.history.slice().reverse().map((item, back) => el("li",
        { class: item.source === "event" ? "event" : "run", dataset: { itemId: item.item_id } },
        el("span", { class: "when", text: `#${total - back}` }),
        el("span", { text: item.title }),
        item.source === "event" ? el("span", { class: "badge", text: "new" }) : null,
        el("button", { class: "remove", title: "remove from my history", text: "×",
                       onclick: (e) => guarded(e.currentTarget, () => act(item.item_id, "remove")) })));
      list.replaceChildren(...rows);
    } catch (error) {
      if (error.status !== 404) throw error;
      $("history-count").textContent = "(0)";
      list.replaceChildren(el("li", { text: "No history yet: search for items you like and press Like." }));
    }
  }

  // -- interests chart -------------------------------------------------------------------------
  async function refreshInterests() {
    const chart = $("interests-chart");
    const mutedBox = $("muted-interests");
    try {
      const profile = await api("GET", userPath("/interests"));
      const width = 280;
      const rows = profile.interests.map((interest) => {
        const share = Math.max(0.01, interest.share);
        const bar = svg("svg", { viewBox: `0 0 ${width} 14`, role: "img",
                                 "aria-label": `${interest.label}: ${Math.round(interest.share * 100)}%` },
          svg("rect", { x: 0, y: 2, width: width, height: 10, rx: 3, fill: "#eef2f8" }),
          svg("rect", { class: interest.horizon === "recent" ? "bar recent" : "bar", x: 0, y: 2,
                        width: Math.round(width * share), height: 10, rx: 3 }));
        const examples = interest.examples.map((item) => item.title).join(" · ");
        return el("div", { class: "interest", title: examples },
          el("div", { class: "chart-row" },
            el("strong", { text: interest.label }),
            el("span", { text: `${Math.round(interest.share * 100)}% · ${interest.horizon}` }),
            el("button", { text: "mute", title: "hide this interest",
                           onclick: (e) => guarded(e.currentTarget, () => mute(interest.key, true)) })),
          bar);
      });
      chart.replaceChildren(...(rows.length ? rows : [el("p", { class: "muted", text: "No interests yet." })]));
      mutedBox.replaceChildren(...profile.muted.map((interest) => el("div", {},
        `muted: ${interest.label} `,
        el("button", { text: "unmute", onclick: (e) => guarded(e.currentTarget, () => mute(interest.key, false)) }))));
    } catch (error) {
      if (error.status !== 404) throw error;
      chart.replaceChildren(el("p", { class: "muted", text: "Interests appear once there is a history." }));
      mutedBox.replaceChildren();
    }
  }

  // -- interest timeline: stacked areas, one per interest, oldest window on the left -------------
  const TIMELINE_COLOURS = ["#3b6fb6", "#e08a2c", "#5aa469", "#b5527a", "#7f6bb3", "#8a8a8a"];
  const TIMELINE_WORDS = { en: ["older", "recent", "Interests over your history"],
                           zh: ["较早", "最近", "兴趣随时间的变化"] };

  async function refreshTimeline() {
    const box = $("timeline-chart");
    let data;
    try {
      data = await api("GET", userPath(`/interests/timeline?windows=8&lang=${page.lang}`));
    } catch (error) {
      if (error.status !== 404) throw error;
      box.replaceChildren();
      return;
    }
    const windows = data.windows;
    if (windows.length < 2 || !data.interests.length) { box.replaceChildren(); return; }
    const [older, recent, title] = TIMELINE_WORDS[page.lang] || TIMELINE_WORDS.en;
    const width = 280, height = 90, step = width / (windows.length - 1);
    const x = (i) => (i * step).toFixed(1);
    const y = (v) => (height - v * height).toFixed(1);
    const below = windows.map(() => 0);
    const areas = data.interests.map((interest, n) => {
      const top = windows.map((w, i) => below[i] + w.shares[n]);
      const upper = top.map((v, i) => `${x(i)},${y(v)}`);
      const lower = below.map((v, i) => `${x(i)},${y(v)}`).reverse();
      top.forEach((v, i) => { below[i] = v; });
      return svg("polygon", { points: [...upper, ...lower].join(" "), fill: TIMELINE_COLOURS[n % TIMELINE_COLOURS.length],
                              "fill-opacity": 0.85 }, svg("title", { text: interest.name }));
    });
    const chart = svg("svg", { viewBox: `0 -4 ${width} ${height + 22}`, role: "img", "aria-label": title },
      ...areas,
      svg("text", { x: 0, y: height + 16, text: older }),
      svg("text", { x: width, y: height + 16, "text-anchor": "end", text: recent }));
    const legend = el("div", { class: "legend" }, data.interests.map((interest, n) =>
      el("span", { class: "legend-item" },
        svg("svg", { class: "swatch", viewBox: "0 0 10 10" },
          svg("rect", { width: 10, height: 10, rx: 2, fill: TIMELINE_COLOURS[n % TIMELINE_COLOURS.length] })),
        `${interest.name} (${Math.round(interest.long_term_share * 100)}% → ${Math.round(interest.recent_share * 100)}%)`)));
    box.replaceChildren(el("div", { class: "chart-row" }, el("strong", { text: title })), chart, legend);
  }

  async function mute(key, on) {
    await sendEvent({ type: on ? "mute_interest" : "unmute_interest", value: key });
    await Promise.all([refreshInterests(), refreshTimeline(), refreshCards()]);
  }

  // -- recommendation cards --------------------------------------------------------------------
  async function refreshCards() {
    const container = $("cards");
    let data;
    try {
      data = await api("GET", userPath(`/recommendations?k=${page.k}&explain=true&group=reason&lang=${page.lang}`));
    } catch (error) {
      if (error.status !== 404) throw error;
      container.replaceChildren(el("p", { class: "muted",
        text: "No recommendations yet: search for a few items you like and press Like." }));
      return;
    }
    const existing = new Map([...container.querySelectorAll(".card")].map((card) => [card.dataset.itemId, card]));
    const byId = new Map(data.recommendations.map((rec) => [rec.item_id, rec]));
    // one section per reason: the shared reason said once, each card saying what is its own
    const sections = data.groups.map((group) => {
      const cards = group.items.map((item) => {
        const rec = { ...byId.get(item.item_id), specific: item.specific };
        const card = existing.get(rec.item_id);
        if (card) { updateCard(card, rec); return card; }
        const fresh = buildCard(rec);
        if (existing.size) {
          fresh.classList.add("fresh");
          setTimeout(() => fresh.classList.remove("fresh"), 2000);
        }
        return fresh;
      });
      return el("section", { class: `reason-group ${group.kind}` },
        group.reason ? el("h3", { class: "group-reason", text: group.reason }) : null,
        el("div", { class: "group-cards" }, cards));
    });
    container.replaceChildren(...sections);
  }

  function buildCard(rec) {
    const panel = el("div", { class: "why-panel", hidden: true });
    const card = el("article", { class: "card", dataset: { itemId: rec.item_id } },
      el("h3", {}, el("span", { class: "rank" }), el("span", { class: "title", text: rec.title })),
      el("div", { class: "chips" }, rec.attributes.map((a) => el("span", { class: "chip", text: a }))),
      el("p", { class: "sentence" }),
      el("div", { class: "actions" },
        el("button", { class: "why-btn", text: "Why?", onclick: (e) => guarded(e.currentTarget, () => toggleWhy(card)) }),
        el("button", { class: "like-btn", text: "Like",
                       onclick: (e) => guarded(e.currentTarget, () => act(rec.item_id, "like")) }),
        el("button", { class: "not-interested-btn", text: "Not interested",
                       onclick: (e) => guarded(e.currentTarget, () => act(rec.item_id, "not_interested")) }),
        el("button", { class: "more-like-btn", text: "More like this",
                       onclick: (e) => guarded(e.currentTarget, () => moreLike(rec.item_id, rec.title)) })),
      panel);
    updateCard(card, rec);
    return card;
  }

  function updateCard(card, rec) {
    card.querySelector(".rank").textContent = `${rec.rank}.`;
    const sentence = rec.specific || (rec.explanation ? rec.explanation.sentence.text : "");
    card.querySelector(".sentence").textContent = sentence;
    const panel = card.querySelector(".why-panel");
    if (!panel.hidden) loadWhy(card).catch((error) => say(error.message, true));
  }

  async function toggleWhy(card) {
    const panel = card.querySelector(".why-panel");
    if (!panel.hidden) { panel.hidden = true; return; }
    panel.hidden = false;
    panel.replaceChildren(el("p", { class: "muted", text: "working out why…" }));
    await loadWhy(card);
  }

  async function loadWhy(card) {
    const itemId = card.dataset.itemId;
    const e = await api("GET", userPath(`/recommendations/${enc(itemId)}/explanation?lang=${page.lang}&k=${page.k}`));
    const panel = card.querySelector(".why-panel");
    const parts = [el("p", { class: "why-sentence", text: e.sentence.text }),
                   el("p", { class: "muted", text: `rank ${e.rank} (top ${e.k}: ${e.recommended ? "yes" : "no"}) · model ${e.model}` })];
    const evidence = e.recommended || !e.why_not ? e.evidence : e.why_not.evidence_against;
    if (evidence.length) {
      parts.push(el("h4", { text: e.recommended ? "Evidence (score drop when removed)" : "Holding it back" }));
      const scale = Math.max(...evidence.map((ev) => Math.abs(ev.contribution)), 1e-9);
      evidence.forEach((ev) => parts.push(evidenceRow(ev, scale)));
    }
    if (e.shared_attributes.length) {
      parts.push(el("h4", { text: "Shared with the evidence" }),
                 el("div", { class: "chips" }, e.shared_attributes.map((a) => el("span", { class: "chip shared", text: a }))));
    }
    if (e.interest && !e.interest.muted) {
      parts.push(el("h4", { text: "Interest it serves" }),
                 el("p", { text: `${e.interest.label} (${Math.round(e.interest.share * 100)}% of your history, ${e.interest.horizon})` }));
    }
    if (e.counterfactual) {
      const cf = e.counterfactual;
      parts.push(el("h4", { text: "Counterfactual" }), el("p", { class: "counterfactual", text: cf.found
        ? `Without ${cf.removed_titles.join(", ")}, it would fall to rank ${cf.new_rank} (verified by re-scoring).`
        : `No set of up to ${cf.max_size} history items takes it out of your top ${e.k}.` }));
    }
    if (e.why_not && e.why_not.best_lift) {
      const lift = e.why_not.best_lift;
      parts.push(el("h4", { text: "What would lift it" }),
                 el("p", { text: `${lift.kind === "interest" ? "the interest" : "the item"} ${lift.title} → rank ${lift.new_rank}` }));
    }
    panel.replaceChildren(...parts);
  }

  function evidenceRow(ev, scale) {
    const width = Math.max(2, Math.round(88 * Math.abs(ev.contribution) / scale));
    return el("div", { class: "evidence-row", title: `contribution ${ev.contribution.toFixed(4)}` },
      el("span", { text: ev.title }),
      svg("svg", { viewBox: "0 0 90 10", role: "img", "aria-label": ev.contribution.toFixed(4) },
        svg("rect", { class: ev.contribution >= 0 ? "pos" : "neg", x: 0, y: 1, width, height: 8, rx: 2 })));
  }

  // -- actions ---------------------------------------------------------------------------------
  async function act(itemId, type) {
    await sendEvent({ item_id: itemId, type });
    say(`${type.replace("_", " ")}: saved`);
    await refreshAll();
  }

  async function moreLike(itemId, title) {
    const data = await api("GET", userPath(`/more-like/${enc(itemId)}?k=6`));
    const box = $("more-like");
    box.replaceChildren(
      el("header", {}, el("h2", { text: `More like “${title}”` }),
         el("button", { text: "close", onclick: () => { box.hidden = true; } })),
      itemList(data.recommendations));
    box.hidden = false;
  }

  function itemList(items) {
    return el("ul", { class: "item-list" }, items.map((item) => el("li", { dataset: { itemId: item.item_id } },
      el("span", { text: item.title }),
      el("button", { class: "like-btn", text: "Like", onclick: (e) => guarded(e.currentTarget, () => act(item.item_id, "like")) }))));
  }

  async function search(query) {
    const data = await api("GET", `/api/items/search?q=${enc(query)}&k=10`);
    $("search-results").replaceChildren(...itemList(data.items).children);
    if (!data.items.length) say(`nothing found for “${query}”`);
  }

  async function ask(question) {
    const data = await api("POST", userPath("/ask"), { question, k: page.k });
    const box = $("answer");
    const parts = [el("p", { class: "answer-text", text: data.answer })];
    if (data.can_ask.length) {
      parts.push(el("div", { class: "suggestions" }, data.can_ask.map((q) => el("button", { text: q,
        onclick: (e) => { $("ask-input").value = q; guarded(e.currentTarget, () => ask(q)); } }))));
    }
    if (data.recommendations.length) parts.push(el("ol", {}, data.recommendations.map((r) => el("li", { text: r.title }))));
    if (data.interests.length) {
      parts.push(el("ul", {}, data.interests.map((i) => el("li", { text: `${i.label}: ${Math.round(i.share * 100)}%` }))));
    }
    box.replaceChildren(...parts);
    box.hidden = false;
  }

  function newUserId() {
    const bytes = new Uint8Array(4);
    crypto.getRandomValues(bytes);
    return "guest-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // -- wiring ----------------------------------------------------------------------------------
  async function start() {
    const params = new URLSearchParams(window.location.search);
    page.lang = params.get("lang") === "zh" ? "zh" : "en";
    $("lang-select").value = page.lang;
    $("user-form").addEventListener("submit", (e) => { e.preventDefault(); guarded(null, () => loadUser($("user-input").value)); });
    $("new-user").addEventListener("click", () => guarded(null, () => loadUser(newUserId())));
    $("forget-user").addEventListener("click", (e) => guarded(e.currentTarget, async () => {
      if (!page.user || !window.confirm(`Forget every stored event of ${page.user}?`)) return;
      const result = await api("DELETE", userPath());
      say(`forgot ${result.events_deleted} events`);
      await refreshAll();
    }));
    $("lang-select").addEventListener("change", (e) => { page.lang = e.target.value; guarded(null, () => loadUser(page.user)); });
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const query = $("search-input").value.trim();
      if (query) guarded(null, () => search(query));
    });
    $("ask-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const question = $("ask-input").value.trim();
      if (question && page.user) guarded(e.submitter, () => ask(question));
    });
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      useToken($("token-input").value);
      $("token-input").value = "";
      window.location.reload();
    });
    $("token-clear").addEventListener("click", () => { useToken(""); window.location.reload(); });
    const health = await api("GET", "/api/health");
    const run = health.run;
    $("run-info").textContent = `${run.model} on ${run.dataset || "?"} · ${run.n_items} items · ${run.n_users} users`;
    if (health.auth === "open") {
      $("open-banner").hidden = false;
    } else if (!page.token) {
      askForToken("This service needs an access token: ask its operator for one.");
      return;
    } else {
      $("token-clear").hidden = false;
    }
    const own = tokenUser(page.token);
    let users = { users: [] };
    if (!own) users = await api("GET", "/api/users?limit=50");  // the service key (or an open service)
    else $("new-user").hidden = true;  // a user token covers its own user alone
    $("user-list").replaceChildren(...users.users.map((u) => el("option", { value: u.user_id, text: `${u.history_length} items` })));
    const first = own || params.get("user") || (users.users[0] && users.users[0].user_id) || newUserId();
    await loadUser(first);
  }

  start().catch((error) => say(error.message, true));
})();
