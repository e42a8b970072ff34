"use strict";
// The web chat: sends what the citizen types or taps to /api/chat and shows the replies.
// Server text is only ever put in text nodes; links are built as <a> elements.
(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("ask");
  const input = document.getElementById("q");
  const error = document.getElementById("error");
  const bigger = document.getElementById("bigger");
  const langButton = document.getElementById("lang");
  const embedded = window.parent !== window;

  const TEXTS = {
    vi: {
      title: "Trợ lý thủ tục hành chính", intro: "Hỏi về giấy tờ, lệ phí, thời hạn, nơi nộp hồ sơ.",
      bigger: "Chữ lớn", label: "Câu hỏi của bạn", send: "Gửi", log: "Cuộc trò chuyện",
      placeholder: "Ví dụ: làm giấy khai sinh cần gì", me: "Bạn: ", bot: "Trợ lý: ",
      choices: "Lựa chọn", wait: "Đang trả lời…", other: "English", otherLang: "en",
      error: "Không kết nối được máy chủ. Vui lòng kiểm tra mạng và thử lại.",
      busy: "Hệ thống đang bận. Vui lòng gửi lại sau ít phút.",
      slow: "Bạn gửi hơi nhanh. Vui lòng đợi {s} giây rồi gửi lại.",
      image: "Ảnh kèm thông báo",
    },
    en: {
      title: "Administrative procedures assistant",
      intro: "Ask about documents, fees, processing time, where to apply.",
      bigger: "Large text", label: "Your question", send: "Send", log: "Conversation",
      placeholder: "E.g. how to register a birth", me: "You: ", bot: "Assistant: ",
      choices: "Choices", wait: "Answering…", other: "Tiếng Việt", otherLang: "vi",
      error: "Cannot reach the server. Please check your connection and try again.",
      busy: "The system is busy. Please send your message again in a few minutes.",
      slow: "You are sending too quickly. Please wait {s} seconds and send again.",
      image: "Image with the announcement",
    },
  };

  // Storage can be blocked (private mode, third-party iframe): then nothing is remembered.
  function load(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }
  function save(key, value) {
    try { localStorage.setItem(key, value); } catch (e) { /* not remembered */ }
  }

  // The server opens a session with the first message and returns its token; kept per
  // browser, so the conversation (and a lookup in progress) survives a reload.
  let session = load("motcua-session");
  function headers(extra) {
    return Object.assign(session ? { "X-Chat-Session": session } : {}, extra || {});
  }
  function keep(data) {
    if (data && typeof data.session === "string") {
      session = data.session;
      save("motcua-session", session);
    }
  }
  let lang = load("motcua-lang") === "en" ? "en" : "vi";

  function setLang(value) {
    lang = value === "en" ? "en" : "vi";
    save("motcua-lang", lang);
    const t = TEXTS[lang];
    document.documentElement.lang = lang;
    document.title = t.title + " — motcua";
    for (const el of document.querySelectorAll("[data-t]")) el.textContent = t[el.dataset.t];
    log.setAttribute("aria-label", t.log);
    input.placeholder = t.placeholder;
    langButton.textContent = t.other;
    langButton.lang = t.otherLang;
  }

  function setBig(on) {
    document.body.classList.toggle("big", on);
    bigger.setAttribute("aria-pressed", String(on));
    save("motcua-big", on ? "1" : "0");
  }

  // Text with its web addresses as links (trailing punctuation stays text).
  const URL_RE = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  function linkify(parent, text) {
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      parent.append(text.slice(last, match.index));
      const a = document.createElement("a");
      a.href = match[0];
      a.textContent = match[0];
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.append(a);
      last = match.index + match[0].length;
    }
    parent.append(text.slice(last));
  }

  function bubble(who, text) {
    const div = document.createElement("div");
    div.className = "msg " + who;
    div.lang = lang;
    const label = document.createElement("span");
    label.className = "sr-only";
    label.textContent = TEXTS[lang][who === "me" ? "me" : "bot"];
    const body = document.createElement("span");
    linkify(body, text);
    div.append(label, body);
    log.append(div);
    return div;
  }

  // An announcement's image (an https address only), above its text.
  function picture(div, url) {
    if (typeof url !== "string" || !url.startsWith("https://")) return;
    const img = document.createElement("img");
    img.src = url;
    img.alt = TEXTS[lang].image;
    img.loading = "lazy";
    img.referrerPolicy = "no-referrer";
    img.style.display = "block";
    img.style.maxWidth = "100%";
    img.style.marginBottom = "6px";
    div.insertBefore(img, div.lastChild);
  }

  // A reply as a bubble: its image, text and buttons.
  function show(reply) {
    const div = bubble("bot", reply.text);
    picture(div, reply.image);
    choices(div, reply.buttons);
    return div;
  }

  function choices(div, buttons) {
    if (!buttons || !buttons.length) return;
    const group = document.createElement("div");
    group.className = "choices";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", TEXTS[lang].choices);
    for (const b of buttons) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = b.title;
      button.addEventListener("click", () => {
        ask({ payload: b.payload }, b.title);
        input.focus({ preventScroll: true });
      });
      group.append(button);
    }
    div.append(group);
  }

  function showFrom(el) {
    log.scrollTop = Math.max(0, el.offsetTop - 8);
  }

  // Each message carries an id; sent again after a lost answer, it is answered once.
  let unsent = null;  // { text, id } of the last message that got no answer
  function messageId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Requests go one after another, so replies keep the order of the questions.
  let queue = Promise.resolve();
  function ask(body, shown) {
    body.id = body.text && unsent && unsent.text === body.text ? unsent.id : messageId();
    if (body.payload && body.payload.startsWith("lang:")) setLang(body.payload.slice(5));
    const mine = shown ? bubble("me", shown) : null;
    if (mine) showFrom(mine);
    queue = queue.then(() => post(body, mine));
    return queue;
  }

  async function post(body, mine) {
    const wait = bubble("bot wait", TEXTS[lang].wait);
    log.setAttribute("aria-busy", "true");
    try {
      const res = await fetch("api/chat", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(body),
      });
      if (res.status === 429) {
        throw new Error("slow:" + (parseInt(res.headers.get("Retry-After"), 10) || 60));
      }
      if (!res.ok) throw new Error(res.status === 503 ? "busy" : "HTTP " + res.status);
      const data = await res.json();
      keep(data);
      unsent = null;
      wait.remove();
      error.hidden = true;
      let first = null;
      for (const reply of data.replies || []) {
        const div = show(reply);
        first = first || div;
      }
      if (mine || first) showFrom(mine || first);
      return true;
    } catch (e) {
      wait.remove();
      error.textContent = e.message === "busy" ? TEXTS[lang].busy
        : e.message.startsWith("slow:") ? TEXTS[lang].slow.replace("{s}", e.message.slice(5))
        : TEXTS[lang].error;
      error.hidden = false;
      if (body.text && !input.value) input.value = body.text;  // ready to send again
      if (body.text) unsent = { text: body.text, id: body.id };
      return false;
    } finally {
      log.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    ask({ text: text }, text);
  });

  bigger.addEventListener("click", () => setBig(!document.body.classList.contains("big")));
  langButton.addEventListener("click", () => {
    const to = TEXTS[lang].otherLang;
    ask({ payload: "lang:" + to }, TEXTS[lang].other);
  });

  if (embedded) {
    // In the widget's dialog: Esc closes it, and opening it puts the cursor in the input.
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") window.parent.postMessage({ motcua: "close" }, "*");
    });
    window.addEventListener("focus", () => {
      if (document.activeElement === document.body) input.focus();
    });
  }

  // Staff replies and status changes of a followed application arrive through the inbox.
  async function poll() {
    if (!session) return;  // nothing can be waiting before the first message
    try {
      const res = await fetch("api/chat/inbox", { headers: headers() });
      if (res.ok) {
        for (const reply of (await res.json()).replies || []) showFrom(show(reply));
      }
    } catch (e) {
      // The next poll will try again; sending shows its own error line.
    }
  }
  setInterval(() => { queue = queue.then(poll); }, 5000);

  setLang(lang);
  setBig(load("motcua-big") === "1");
  ask({ payload: "menu", lang: lang }, null).then(() => {
    if (embedded && document.hasFocus()) input.focus();
  });
})();
