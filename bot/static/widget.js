"use strict";
// The assistant on a commune's website:
//   <script src="https://HOST/static/widget.js" defer></script>
// adds a floating "Hỏi trợ lý" button that opens the web chat of HOST in a dialog; with
// data-commune="SLUG" on the tag, that commune's chat (HOST/c/SLUG/) when HOST serves several.
(function () {
  const script = document.currentScript ||
    document.querySelector('script[src*="/static/widget.js"]');
  if (!script || window.motcuaWidget) return;
  window.motcuaWidget = true;
  const commune = (script.dataset.commune || "").match(/^[a-z0-9-]+$/);
  // .../static/widget.js → .../ (or .../c/SLUG/)
  const chatUrl = new URL(commune ? `../c/${commune[0]}/` : "../", script.src).href;
  const chatOrigin = new URL(chatUrl).origin;

  const CSS = `
    :host { all: initial; }
    .open { position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; min-height: 48px;
            padding: 10px 18px; border: 2px solid #fff; border-radius: 24px; background: #a50e0e;
            color: #fff; font: 600 17px/1.3 system-ui, sans-serif; cursor: pointer;
            box-shadow: 0 2px 10px rgba(0, 0, 0, .35); }
    dialog { width: min(420px, 100vw); height: min(680px, 100vh); height: min(680px, 100dvh);
             max-width: 100vw; max-height: 100dvh; margin: auto 16px 16px auto; padding: 0;
             border: 0; border-radius: 12px; overflow: hidden; box-shadow: 0 4px 24px rgba(0, 0, 0, .4); }
    dialog[open] { display: flex; flex-direction: column; }
    dialog::backdrop { background: rgba(0, 0, 0, .35); }
    .bar { display: flex; justify-content: flex-end; background: #7a0a0a; }
    .close { min-height: 44px; padding: 6px 16px; border: 0; background: transparent; color: #fff;
             font: 600 16px/1.2 system-ui, sans-serif; cursor: pointer; }
    iframe { flex: 1; width: 100%; border: 0; }
    :focus-visible { outline: 3px solid #ffd84d; outline-offset: -3px; }
    @media (max-width: 480px) {
      dialog { width: 100vw; height: 100vh; height: 100dvh; margin: 0; border-radius: 0; }
    }`;

  const host = document.createElement("div");
  host.id = "motcua-widget";
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = CSS;

  const open = document.createElement("button");
  open.type = "button";
  open.className = "open";
  open.textContent = "Hỏi trợ lý";
  open.setAttribute("aria-haspopup", "dialog");

  const dialog = document.createElement("dialog");
  dialog.setAttribute("aria-label", "Trợ lý thủ tục hành chính");
  const bar = document.createElement("div");
  bar.className = "bar";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.textContent = "Đóng ✕";
  close.setAttribute("aria-label", "Đóng trợ lý");
  bar.append(close);
  const frame = document.createElement("iframe");
  frame.title = "Trợ lý thủ tục hành chính";
  // Tab past the chat (either way) comes back into the dialog instead of leaving it.
  const before = document.createElement("span");
  const after = document.createElement("span");
  before.tabIndex = after.tabIndex = 0;
  before.addEventListener("focus", () => frame.focus());
  after.addEventListener("focus", () => close.focus());
  dialog.append(before, bar, frame, after);
  root.append(style, open, dialog);

  let opener = null;
  function show() {
    const active = document.activeElement;
    opener = active && active !== host && active !== document.body ? active : open;
    if (!frame.src) frame.src = chatUrl;
    dialog.showModal();
    open.setAttribute("aria-expanded", "true");
    frame.focus();
  }
  function hide() {
    if (dialog.open) dialog.close();
  }
  dialog.addEventListener("close", () => {
    open.setAttribute("aria-expanded", "false");
    (opener && opener.isConnected ? opener : open).focus();
  });
  frame.addEventListener("load", () => {  // first opening: focus the chat once it is there
    if (dialog.open) frame.contentWindow.focus();
  });
  open.addEventListener("click", show);
  close.addEventListener("click", hide);
  // Esc pressed inside the chat page (another origin) arrives as a message.
  window.addEventListener("message", (event) => {
    if (event.origin === chatOrigin && event.source === frame.contentWindow &&
        event.data && event.data.motcua === "close") hide();
  });

  open.setAttribute("aria-expanded", "false");
  (document.body || document.documentElement).append(host);
})();
