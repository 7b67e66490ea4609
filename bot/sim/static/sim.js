// The simulator's chat page. Everything shown goes through textContent, never innerHTML.
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("sim-data").textContent);
  const t = data.t;
  const $ = (id) => document.getElementById(id);
  const chat = $("chat");
  const state = {
    openid: "", mode: "plain", voice: false, next: 0,
    names: new Map(), chats: new Map(), workers: new Map(), worker: "", group: [],
  };

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- the resident's chat ---------------------------------------------------------------------

  function listOf(map, key) {
    if (!map.has(key)) map.set(key, []);
    return map.get(key);
  }

  function bubbleRow(m, meInitial, botInitial) {
    const row = el("div", "row " + m.side);
    const bubble = el("div", "bubble");
    if (m.note) bubble.appendChild(el("div", "note", m.note));
    if (m.image) {
      const img = el("img", "photo");
      img.src = m.image;
      img.alt = t.sent_photo;
      bubble.appendChild(img);
    }
    if (m.text || !m.image) bubble.appendChild(el("div", "text", m.text));
    if (m.side === "bot") row.appendChild(el("div", "avatar", botInitial));
    row.appendChild(bubble);
    if (m.side === "me") row.appendChild(el("div", "avatar me", meInitial));
    return row;
  }

  function showBubble(m) {
    const name = state.names.get(state.openid) || "?";
    chat.appendChild(bubbleRow(m, name.slice(0, 1), "社"));
    chat.scrollTop = chat.scrollHeight;
  }

  function say(openid, side, text, note, image) {
    const m = { side, text, note: note || "", image: image || "" };
    listOf(state.chats, openid).push(m);
    if (openid === state.openid) showBubble(m);
  }

  function renderChat() {
    chat.replaceChildren();
    listOf(state.chats, state.openid).forEach(showBubble);
    $("who").textContent = state.names.get(state.openid) || "";
  }

  async function post(url, body) {
    const resp = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    let answer;
    try { answer = await resp.json(); } catch (err) { answer = { ok: false, error: "HTTP " + resp.status }; }
    if (!resp.ok || !answer.ok) throw new Error(answer.error || "HTTP " + resp.status);
    return answer;
  }

  async function act(kind, fields, shown, side, image) {
    const openid = state.openid;
    if (shown || image) say(openid, side || "me", shown, "", image);
    try {
      const answer = await post("/sim/send", { openid, kind, mode: state.mode, ...fields });
      if (answer.reply === null || answer.reply === undefined) say(openid, "sys", t.no_reply);
      else say(openid, "bot", answer.reply, answer.encrypted ? t.mode_safe : "");
    } catch (err) {
      say(openid, "err", t.error + err.message);
    }
  }

  // --- residents --------------------------------------------------------------------------------

  const picker = $("resident");
  function addResident(openid, name) {
    state.names.set(openid, name);
    const option = el("option", "", name + " · " + openid);
    option.value = openid;
    picker.insertBefore(option, picker.querySelector('option[value="__new__"]'));
    return option;
  }
  const fresh = el("option", "", "＋ " + t.new_resident);
  fresh.value = "__new__";
  picker.appendChild(fresh);
  data.residents.forEach((r) => addResident(r.openid, r.name));
  picker.addEventListener("change", () => {
    if (picker.value === "__new__") {
      const openid = "oSimNew" + Math.random().toString(16).slice(2, 10);
      addResident(openid, t.new_resident + openid.slice(-4)).selected = true;
    }
    state.openid = picker.value;
    renderChat();
  });
  state.openid = picker.value = data.residents.length ? data.residents[0].openid : "";
  if (!state.openid) { picker.value = "__new__"; picker.dispatchEvent(new Event("change")); }
  renderChat();

  $("mode").addEventListener("change", (e) => { state.mode = e.target.value; });

  // --- composing --------------------------------------------------------------------------------

  const input = $("text");
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text && !state.voice) return;
    input.value = "";
    if (state.voice) act("voice", { text }, "[" + t.sent_voice + "] " + (text || t.voice_unheard));
    else act("text", { text }, text);
  });
  $("voice").addEventListener("click", (e) => {
    state.voice = !state.voice;
    e.currentTarget.textContent = state.voice ? t.keyboard : t.voice;
    e.currentTarget.setAttribute("aria-pressed", String(state.voice));
    input.placeholder = state.voice ? t.voice_placeholder : t.placeholder;
  });
  $("location").addEventListener("click", () => {
    act("location", { lat: 30.2741, lng: 120.1551, label: t.location_label }, "[" + t.sent_location + "] " + t.location_label);
  });
  $("follow").addEventListener("click", () => act("subscribe", {}, t.sent_follow, "sys"));
  $("unfollow").addEventListener("click", () => act("unsubscribe", {}, t.sent_unfollow, "sys"));
  $("scan").addEventListener("click", () => act("scan", { key: t.scan_scene }, t.sent_scan, "sys"));
  $("sticker").addEventListener("click", () => act("sticker", {}, "[" + t.sent_sticker + "]"));

  // A photo from the computer, scaled down on a canvas (a JPG under 600 KB: /sim/send takes at
  // most 1 MiB) and sent as WeChat sends one: the simulator keeps it for media/get.
  const PHOTO_MAX_BYTES = 600000;
  function loadImage(file) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      const url = URL.createObjectURL(file);
      img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error(t.photo_unreadable)); };
      img.src = url;
    });
  }
  async function photoData(file) {
    const img = await loadImage(file);
    let side = 1600;
    let quality = 0.85;
    for (let n = 0; n < 8; n++) {
      const scale = Math.min(1, side / Math.max(img.naturalWidth, img.naturalHeight, 1));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
      canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
      canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
      const url = canvas.toDataURL("image/jpeg", quality);
      if ((url.length - url.indexOf(",") - 1) * 3 / 4 <= PHOTO_MAX_BYTES) return url;
      side = Math.round(side * 0.75);
      quality = Math.max(0.5, quality - 0.1);
    }
    throw new Error(t.photo_too_big);
  }
  $("photo").addEventListener("click", () => $("photo-file").click());
  $("photo-file").addEventListener("change", async (e) => {
    const file = e.target.files && e.target.files[0];
    e.target.value = "";
    if (!file) return;
    try {
      const url = await photoData(file);
      act("image", { image: url }, "", "me", url);
    } catch (err) {
      say(state.openid, "err", t.error + err.message);
    }
  });

  // --- the account's custom menu ----------------------------------------------------------------

  const menu = $("menu");
  function closeSub() { menu.querySelectorAll(".sub").forEach((n) => n.remove()); }
  function press(button) {
    closeSub();
    if (button.type === "view" || button.type === "miniprogram") {
      act("view", { key: button.url || button.key || "" }, t.opened + (button.url || ""), "sys");
    } else {
      act("click", { key: button.key || button.name }, t.sent_click + "：" + button.name, "sys");
    }
  }
  if (!data.menu.length) menu.appendChild(el("span", "empty", t.no_menu));
  data.menu.forEach((button) => {
    const node = el("button", "mbtn", (button.sub_button && button.sub_button.length ? "≡ " : "") + button.name);
    node.type = "button";
    node.addEventListener("click", () => {
      const subs = button.sub_button || [];
      if (!subs.length) { press(button); return; }
      const open = menu.querySelector(".sub");
      closeSub();
      if (open && open.dataset.name === button.name) return;
      const list = el("div", "sub");
      list.dataset.name = button.name;
      list.style.left = node.offsetLeft + "px";
      subs.forEach((s) => {
        const item = el("button", "", s.name);
        item.type = "button";
        item.addEventListener("click", () => press(s));
        list.appendChild(item);
      });
      menu.appendChild(list);
    });
    menu.appendChild(node);
  });

  // --- grid workers and the staff group ---------------------------------------------------------

  const workerChat = $("worker-chat");
  const tabs = $("worker-tabs");
  const people = new Map(data.people.map((p) => [p.id, p.name]));
  data.people.forEach((p) => {
    const option = el("option", "", p.name);
    option.value = p.id;
    $("people").appendChild(option);
  });

  function renderTabs() {
    tabs.replaceChildren();
    state.workers.forEach((list, userid) => {
      const tab = el("button", userid === state.worker ? "on" : "", (people.get(userid) || userid) + " (" + list.length + ")");
      tab.type = "button";
      tab.addEventListener("click", () => selectWorker(userid));
      tabs.appendChild(tab);
    });
  }
  function renderWorker() {
    workerChat.replaceChildren();
    const list = state.workers.get(state.worker) || [];
    if (!list.length) workerChat.appendChild(el("div", "empty-pane", t.empty));
    list.forEach((m) => workerChat.appendChild(bubbleRow(m, t.worker_you, "单")));
    workerChat.scrollTop = workerChat.scrollHeight;
  }
  function selectWorker(userid) {
    state.worker = userid;
    $("worker-id").value = userid;
    listOf(state.workers, userid);
    renderTabs();
    renderWorker();
  }
  function workerSays(userid, m) {
    listOf(state.workers, userid).push(m);
    if (!state.worker) selectWorker(userid);
    else { renderTabs(); if (userid === state.worker) renderWorker(); }
  }
  $("worker-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const userid = $("worker-id").value.trim();
    const text = $("worker-text").value.trim();
    if (!userid || !text) return;
    $("worker-text").value = "";
    if (userid !== state.worker) selectWorker(userid);
    workerSays(userid, { side: "me", text });
    try {
      const answer = await post("/sim/wecom-send", { userid, text });
      if (answer.reply) workerSays(userid, { side: "bot", text: answer.reply, note: t.worker_app });
    } catch (err) {
      workerSays(userid, { side: "err", text: t.error + err.message });
    }
  });
  renderWorker();

  const group = $("group");
  group.appendChild(el("div", "empty-pane", t.empty));
  function groupPost(text, time) {
    if (!state.group.length) group.replaceChildren();
    state.group.push(text);
    group.appendChild(bubbleRow({ side: "bot", text, note: time }, "", "群"));
    group.scrollTop = group.scrollHeight;
  }

  // --- the feed of deliveries -------------------------------------------------------------------

  async function poll() {
    try {
      const resp = await fetch("/sim/feed?after=" + state.next);
      if (resp.ok) {
        const feed = await resp.json();
        state.next = feed.next;
        feed.resident.forEach((p) => say(p.to, "bot", p.text, p.via === "custom" ? t.custom : t.template));
        feed.workers.forEach((w) => workerSays(w.to, {
          side: "bot", text: w.text, image: w.image || "", note: w.dropped ? t.dropped : t.worker_app,
        }));
        feed.group.forEach((g) => groupPost(g.text, g.time));
      }
    } finally {
      setTimeout(poll, 1000);
    }
  }
  poll();
})();
