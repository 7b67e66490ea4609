// The console's only script: canned replies fill the answer box; destructive forms ask first;
// an answer being written is kept in this browser until it is sent; a form is sent once; the
// queue keeps itself fresh.
"use strict";

// Answer drafts live in localStorage, one entry per staff user and ticket (the box's data-draft:
// "cb-draft:<id>:<username>:<number>"), so a draft outlives an expired session and a new login, and
// another clerk on the same browser never gets it in their box. The page shown after a sent answer
// says so (data-draft-sent) and the draft goes; drafts untouched for DRAFT_DAYS go too.
const DRAFT_PREFIX = "cb-draft:";
const DRAFT_DAYS = 7;

function draftStore() {
  try {
    return window.localStorage;
  } catch (error) {
    return null; // storage disabled: the box works, nothing is kept
  }
}

function readDraft(store, key) {
  try {
    const kept = JSON.parse(store.getItem(key) || "null");
    return kept && typeof kept.text === "string" ? kept : null;
  } catch (error) {
    return null;
  }
}

function dropOldDrafts(store) {
  const oldest = Date.now() - DRAFT_DAYS * 86400 * 1000;
  const keys = [];
  for (let i = 0; i < store.length; i += 1) keys.push(store.key(i));
  for (const key of keys) {
    if (!key || !key.startsWith(DRAFT_PREFIX)) continue;
    const kept = readDraft(store, key);
    if (!kept || !(Number(kept.at) >= oldest)) store.removeItem(key);
  }
}

function keepDraft(store, box, note) {
  const key = box.dataset.draft;
  if (!key) return;
  if (box.dataset.draftSent !== undefined) store.removeItem(key);
  const save = () => {
    try {
      if (box.value.trim()) store.setItem(key, JSON.stringify({ text: box.value, at: Date.now() }));
      else store.removeItem(key);
    } catch (error) {
      // storage full or refused: the answer is still in the box
    }
    if (note && !box.value.trim()) note.hidden = true;
  };
  const kept = readDraft(store, key);
  if (box.value) {
    save(); // a refused answer the server gave back: the newest text
  } else if (kept && kept.text) {
    box.value = kept.text;
    if (note) note.hidden = false;
  }
  box.addEventListener("input", save);
}

document.addEventListener("DOMContentLoaded", () => {
  const store = draftStore();
  if (store) {
    dropOldDrafts(store);
    const box = document.getElementById("reply-text");
    if (box) keepDraft(store, box, document.getElementById("draft-note"));
  }
  const canned = document.getElementById("canned");
  if (canned) {
    canned.addEventListener("change", () => {
      const target = document.getElementById(canned.dataset.target);
      if (target && canned.value) {
        target.value = canned.value;
        target.dispatchEvent(new Event("input")); // kept as a draft, like typed text
        target.focus();
      }
    });
  }
  for (const form of document.querySelectorAll("form.confirm")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirmed) {
        delete form.dataset.confirmed; // asked already (below)
        return;
      }
      const part = form.dataset.confirmUrl ? form.querySelector("input[name=buildings]") : null;
      if (part && part.value.trim()) {
        // Some buildings only: the server says how many residents their end tells, then ask.
        event.preventDefault();
        askFor(form, part.value.trim());
        return;
      }
      if (!window.confirm(form.dataset.confirm || "确定？")) event.preventDefault();
    });
  }
  // A button that ends a ticket without a resolution (关闭, 撤销) asks first: it sits beside 办结.
  for (const form of document.querySelectorAll("form")) {
    if (!form.querySelector("button[data-confirm]")) continue;
    form.addEventListener("submit", (event) => {
      const asked = event.submitter && event.submitter.dataset.confirm;
      if (asked && !window.confirm(asked)) event.preventDefault();
    });
  }
  // A form is sent once: a second click while the first is on its way does nothing (the server
  // also refuses a form sent twice: its one-time form_id). Not disabled, which would drop the
  // pressed button's name (接单/办结 …) from what is sent; back on the page (bfcache), it works again.
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) return; // a confirm said no
      if (form.dataset.sending) {
        event.preventDefault();
        return;
      }
      form.dataset.sending = "1";
      form.setAttribute("aria-busy", "true");
    });
  }
});

// A confirm whose words depend on what was typed (an outage's 已恢复 of some buildings): the
// server's words (data-confirm-url?buildings=…); words it refuses, or no answer, send the form as
// it is and the server says what is wrong, or ask in the page's own words.
async function askFor(form, buildings) {
  let said = null;
  try {
    const url = form.dataset.confirmUrl + "?buildings=" + encodeURIComponent(buildings);
    const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    said = await answer.json();
  } catch (error) {
    said = null;
  }
  if (said && said.error) {
    form.dataset.confirmed = "1";
  } else if (window.confirm((said && said.confirm) || form.dataset.confirm || "确定？")) {
    form.dataset.confirmed = "1";
  } else {
    return;
  }
  form.requestSubmit();
}

// The queue reloads itself every data-refresh-s seconds while it is on screen, so a new hand-off
// shows without a click; not while the clerk is in a form field, nor in a hidden tab.
function keepFresh(marker) {
  const every = Number(marker.dataset.refreshS) * 1000;
  if (!(every > 0)) return;
  window.setInterval(() => {
    const here = document.activeElement;
    const typing = here && here.matches("input, textarea, select");
    if (document.visibilityState === "visible" && !typing) window.location.reload();
    else marker.dataset.held = String(Number(marker.dataset.held || 0) + 1); // waits for the next turn
  }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  const marker = document.getElementById("refreshed");
  if (marker) keepFresh(marker);
});

window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-sending]")) {
    delete form.dataset.sending;
    form.removeAttribute("aria-busy");
  }
});
