"use strict";
(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("ask");
  const input = document.getElementById("q");
  // One id per browser, so the conversation (and a lookup in progress) survives a reload.
  let user = localStorage.getItem("motcua-user");
  if (!user) {
    user = "web-" + Array.from(crypto.getRandomValues(new Uint8Array(16)),
      (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("motcua-user", user);
  }

  function add(text, who) {
    const li = document.createElement("li");
    li.className = who;
    li.textContent = text;
    log.appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  async function send(body, shown) {
    add(shown, "me");
    try {
      const res = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ user: user }, body)),
      });
      const data = await res.json();
      for (const reply of data.replies || []) {
        const li = add(reply.text, "bot");
        for (const b of reply.buttons || []) {
          const btn = document.createElement("button");
          btn.type = "button";
          btn.textContent = b.title;
          btn.addEventListener("click", () => send({ payload: b.payload }, b.title));
          li.appendChild(btn);
        }
      }
    } catch (e) {
      add("Không kết nối được máy chủ. Vui lòng thử lại.", "bot");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ text: text }, text);
  });

  const bigger = document.getElementById("bigger");
  bigger.addEventListener("click", () => {
    const on = document.body.classList.toggle("big");
    bigger.setAttribute("aria-pressed", String(on));
  });
})();
