// The console's only script: canned replies fill the answer box; destructive forms ask first.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const canned = document.getElementById("canned");
  if (canned) {
    canned.addEventListener("change", () => {
      const target = document.getElementById(canned.dataset.target);
      if (target && canned.value) {
        target.value = canned.value;
        target.focus();
      }
    });
  }
  for (const form of document.querySelectorAll("form.confirm")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm || "确定？")) event.preventDefault();
    });
  }
});
