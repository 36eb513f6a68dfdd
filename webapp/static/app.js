// The page's own behaviour in the browser. `window.JUHE` is defined just before this file by
// webapp/texts.py: the limits (from the `juhe` package) and every word shown here, so no figure or
// word is typed twice. Loaded in the head, so the listeners are in place before Gradio renders.

// The page's language: the visitor's choice (the switch in the header), kept per browser in
// localStorage so a presenter's choice outlives a reload; without one, the browser's language.
const JUHE_LANG_KEY = "juhe-lang";
const juheChosen = () => {
  try {
    return localStorage.getItem(JUHE_LANG_KEY);
  } catch {
    return null; // storage blocked (a sandboxed frame): the browser's language it is
  }
};
const juheChinese = () => (juheChosen() || navigator.language || "").toLowerCase().startsWith("zh");
const juheFill = (text, values) => text.replace(/\{(\w+)\}/g, (_, key) => String(values?.[key] ?? ""));
const juheSay = (key, values) => {
  const { zh, en } = window.JUHE.texts[key];
  return juheFill(juheChinese() ? zh : en, values);
};
const juheEscape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// A double click on the run button is one edit. trigger_mode="once" skips clicks only once the first
// call is registered, which the page does after an await; a quick second click (more so while 图1 is
// still uploading) slips in before that and starts a second paid call. This drops a double click's
// second click before Gradio sees it; keyboard activation and our own click() (detail 0) pass.
document.addEventListener(
  "click",
  (event) => {
    if (!(event.target instanceof Element) || !event.target.closest("#run")) return;
    if (event.detail > 1) {
      event.stopImmediatePropagation();
      event.preventDefault();
      return;
    }
    // on a phone the results are below the form: bring them into view
    if (window.matchMedia("(max-width: 768px)").matches) {
      setTimeout(() => document.getElementById("results-panel")?.scrollIntoView({ behavior: "smooth", block: "start" }), 150);
    }
  },
  true,
);

// Ctrl+Enter (Cmd+Enter on a Mac) in the instruction runs the edit; Enter and Shift+Enter keep adding
// lines (Gradio's own textbox would take Shift+Enter as "submit" and swallow the line). A key pressed
// while an input method is composing (pinyin) is left to the input method.
document.addEventListener(
  "keydown",
  (event) => {
    if (event.key !== "Enter" || event.isComposing || event.keyCode === 229) return;
    if (!(event.target instanceof Element) || !event.target.closest("#prompt")) return;
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      const run = document.querySelector("button#run");
      if (run && !run.disabled) run.click();
    }
  },
  true,
);
// Gradio's textbox reads "keypress": Shift+Enter there would submit and swallow the new line.
document.addEventListener(
  "keypress",
  (event) => {
    if (event.key === "Enter" && event.shiftKey && event.target instanceof Element && event.target.closest("#prompt"))
      event.stopPropagation(); // the browser still inserts the line itself
  },
  true,
);

// The live character count under the instruction, and a hint when several images are named in no way.
window.juheCount = (text, a, b, c) => {
  const limit = window.JUHE_LIMITS.promptChars;
  const n = [...(text || "")].length;
  const images = [a, b, c].filter(Boolean).length;
  const named = /图\s*[123一二三]|(image|picture|photo|pic|img)\s*#?\s*[123]/i.test(text || "");
  let out = `<span class="${n > limit ? "over" : ""}">${n} / ${limit}</span>`;
  if (n > limit) out += juheSay("cut_off");
  if (images >= 2 && !named && n > 0)
    out += juheSay("name_images");
  return out;
};

// Beside the slots: which of them use a link typed under Advanced (a link wins over an upload).
window.juheLinkNote = (...links) =>
  links
    .map((link, i) => ((link || "").trim() ? juheSay("link_note", { n: i + 1 }) : ""))
    .filter(Boolean)
    .map((line) => `<div>${juheEscape(line)}</div>`)
    .join("");

// A custom size out of range is said at once, in the visitor's language; Edit then refuses it too.
window.juheSizeNote = (size, width, height) => {
  if (size !== "custom") return "";
  const { minSide, maxSide } = window.JUHE_LIMITS;
  const bad = [width, height].some((v) => v === null || v === "" || !Number.isInteger(Number(v)) || v < minSide || v > maxSide);
  if (!bad) return "";
  return `<span class="bad">${juheEscape(juheSay("size_note", { min: minSide, max: maxSide }))}</span>`;
};

// Deleting a result is final: ask first; the answer goes to the server as the first value.
window.juheConfirmDelete = (_confirmed, ...rest) => [
  window.confirm(juheSay("confirm_delete")),
  ...rest,
];

// The browser tab's title follows the language, as the page does.
window.juheTitle = () => {
  document.title = juheSay("tab_title");
};

// The server picks its words (status line, toasts, share links) by this cookie before the browser's
// Accept-Language. In a cross-site frame (a Space) a Lax cookie is not sent: a partitioned one is.
const juheLanguageCookie = () => {
  const framed = window.top !== window.self && location.protocol === "https:";
  const scope = framed ? "; SameSite=None; Secure; Partitioned" : "; SameSite=Lax";
  document.cookie = `${JUHE_LANG_KEY}=${juheChinese() ? "zh" : "en"}; path=/; max-age=31536000${scope}`;
};

// The switch in the header: the other language, remembered for this browser. The page reloads:
// Gradio takes its locale only as it starts (setting it later leaves texts already drawn, such as
// the upload areas, in the old language), and the status line and notes are said anew.
window.juheSwitchLanguage = () => {
  try {
    localStorage.setItem(JUHE_LANG_KEY, juheChinese() ? "en" : "zh");
  } catch {
    return; // nowhere to remember it; the page keeps the browser's language
  }
  juheLanguageCookie();
  location.reload();
};

// The choice itself is applied before Gradio starts (webapp/middleware/language.py presents it as
// navigator.language), so here the cookie only says the language in effect, replacing a stale one.
juheLanguageCookie();

// Gradio's own upload refusals are written in English in the browser. Say them in both languages,
// as the app's own messages are ("中文 / English").
const juheUploadMessages = [
  [/^File\(s\) exceed the maximum allowed size of (.+?): (.*)$/, (m) => juheFill(window.JUHE.texts.too_large.zh, { size: m[1], name: m[2] })],
  [/^Invalid file type: (.*?)\. Only image\/\* allowed\.$/, (m) => juheFill(window.JUHE.texts.bad_type.zh, { name: m[1] })],
];
const juheTranslateToasts = (root) => {
  for (const node of root.querySelectorAll?.('[data-testid="toast-text"]:not([data-juhe])') ?? []) {
    const text = node.textContent.trim();
    for (const [pattern, chinese] of juheUploadMessages) {
      const match = text.match(pattern);
      if (match) node.textContent = `${chinese(match)} / ${text}`;
    }
    node.setAttribute("data-juhe", "1");
  }
};
new MutationObserver((changes) => {
  for (const change of changes) for (const node of change.addedNodes) if (node instanceof Element) juheTranslateToasts(node.parentElement || node);
}).observe(document.documentElement, { childList: true, subtree: true });

// --- The page a stakeholder sees (issue 18) ---
// An out-of-range custom size: the note that says "nothing is sent" also disables Edit.
window.juheSizeCheck = (size, width, height) => {
  const note = window.juheSizeNote(size, width, height);
  return [note, { __type__: "update", interactive: !note }];
};

// An edit starts on the click itself: the status says "Editing…" and Cancel is enabled at once (the
// server's first answer takes a moment); the run's handler disables Cancel when the edit ends.
// Gradio applies a cancelled run's messages that were already on their way, so the run's own
// "⏳ …" progress could arrive after a quick Cancel's "Stopped waiting" and say "Editing…" again:
// from a Cancel to the next run, a "⏳" status puts back what the cancel said. A run refused before
// its handler said anything (the gate) puts back the status it found.
const juheNoChange = { __type__: "update" };
const juheWorking = (text) => String(text ?? "").startsWith("⏳");
let juheStopped = null; // null: no Cancel since the last run; then what the cancel said ("" until it does)
let juheBeforeRun = "";
window.juheRunStarts = (status) => {
  if (!juheWorking(status)) juheBeforeRun = status ?? "";
  juheStopped = null;
  return [juheSay("working"), { __type__: "update", interactive: true }];
};
window.juheStopWaiting = () => {
  juheStopped = "";
};
window.juheStatusShown = (status) => {
  if (juheStopped === null) return juheNoChange;
  if (!juheWorking(status)) {
    juheStopped = status;
    return juheNoChange;
  }
  return juheStopped || juheNoChange;
};
window.juheRunRefused = (status) => [
  juheStopped === null && juheWorking(status) ? juheBeforeRun : juheNoChange,
  { __type__: "update", interactive: false },
];

// A new edit starts with no toast of an earlier one on screen: the status line keeps saying what
// happened last, so toasts never pile up over the page.
document.addEventListener(
  "click",
  (event) => {
    if (!(event.target instanceof Element) || !event.target.closest("#run") || event.detail > 1) return;
    for (const close of document.querySelectorAll('[data-testid="toast-close"]')) close.click();
  },
  true,
);

// --- Friction (issue 18) ---
// The region editor appears at once but draws 图1 (and the example's mask) only when its canvas has
// started and fetched the picture, a few seconds on a slow machine: meanwhile its canvas is blank
// white, as if nothing came. Until it has drawn (its Undo turns on: loading the picture is its first
// action) the canvas is hidden behind a note that says it is loading; after 15 s the note goes anyway.
// Gradio names Undo in the page's language: the app's two are known (any other falls back to 15 s).
const juheUndoNames = ["Undo", "撤销"];
const juheRegionReady = (region) => {
  const undo = region.querySelector(juheUndoNames.map((name) => `button[aria-label="${name}"], button[title="${name}"]`).join(", "));
  return Boolean(undo && !undo.disabled);
};
new MutationObserver(() => {
  const region = document.getElementById("region");
  if (!region) return;
  if (!region.dataset.juheSeen && region.getBoundingClientRect().height > 0) {
    region.dataset.juheSeen = "1";
    region.dataset.juheLoading = juheSay("region_loading");
    region.classList.add("juhe-loading");
    setTimeout(() => region.classList.remove("juhe-loading"), 15000);
  }
  if (region.classList.contains("juhe-loading") && juheRegionReady(region)) region.classList.remove("juhe-loading");
}).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["disabled", "style", "class"] });
// --- Accessible to everyone (issue 18) ---
// Names that contain what a visitor sees (WCAG 2.5.3, label in name: a voice user says what is
// written). Gradio names each upload area "Drop an image file here to upload" while it shows
// "Drop Image Here - or - Click to Upload", a gallery thumbnail "Thumbnail 1 of 3" under its caption,
// and the region editor's "Layer 1" button "Show Layers". Each name becomes the visible text first,
// then the slot (图1) or Gradio's own words. Gradio may rewrite a name (a thumbnail's count, the
// layers shown or hidden) or draw an element anew: this is done again at each change.
const juheName = (element, visible, after) => {
  const current = element.getAttribute("aria-label") || "";
  // Gradio's own name, told apart from the one set here so that a later one of Gradio's is followed
  if (current !== element.dataset.juheName) element.dataset.juheGradio = current;
  const name = [visible, after ?? element.dataset.juheGradio].filter(Boolean).join(" · ");
  if (!visible || current === name) return;
  element.dataset.juheName = name;
  element.setAttribute("aria-label", name);
};
const juheText = (element) => element?.textContent.replace(/\s+/g, " ").trim();
const juheNameThings = () => {
  for (const area of document.querySelectorAll("#slots button[aria-dropeffect]")) {
    const slot = juheText(area.closest("#slots > *")?.querySelector('[data-testid="block-label"]'));
    juheName(area, juheText(area.querySelector('[data-testid="upload-text"]')), slot);
  }
  for (const thumb of document.querySelectorAll("button.thumbnail-item"))
    juheName(thumb, juheText(thumb.querySelector(".caption-label")));
  for (const layers of document.querySelectorAll("#region button.layer-title-button")) juheName(layers, juheText(layers));
};
let juheNaming = false;
new MutationObserver(() => {
  if (juheNaming) return;
  juheNaming = true; // one pass per frame, however many nodes changed
  requestAnimationFrame(() => {
    juheNaming = false;
    juheNameThings();
  });
}).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["aria-label"] });

// A narrow screen, marked on <html> for the sheet's phone rules that must reach outside the app's
// container (toasts): Gradio scopes a custom sheet's @media rules to the container.
const juheNarrow = window.matchMedia("(max-width: 640px)");
const juheMarkNarrow = () => document.documentElement.classList.toggle("juhe-narrow", juheNarrow.matches);
juheNarrow.addEventListener("change", juheMarkNarrow);
juheMarkNarrow();
