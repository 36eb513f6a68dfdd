// The page's own behaviour. `window.JUHE_LIMITS` is defined just before this file, from the limits
// in the `juhe` package, so no figure is typed twice.

// A double click on the run button is one edit. trigger_mode="once" skips clicks only once the first
// call is registered, which the page does after an await; a quick second click (more so while 图1 is
// still uploading) slips in before that and starts a second paid call. This drops a double click's
// second click before Gradio sees it; keyboard activation (detail 0) is untouched. It is loaded in the
// head, so it is listening before the button is rendered.
document.addEventListener("click", (event) => {
  if (event.detail > 1 && event.target instanceof Element && event.target.closest("#run")) {
    event.stopImmediatePropagation();
    event.preventDefault();
  }
}, true);

// The live character count under the instruction, and a hint when several images are named in no way.
window.juheCount = (text, a, b, c) => {
  const limit = window.JUHE_LIMITS.promptChars;
  const zh = (navigator.language || "").toLowerCase().startsWith("zh");
  const n = [...(text || "")].length;
  const images = [a, b, c].filter(Boolean).length;
  const named = /图\s*[123一二三]|(image|picture|photo|pic|img)\s*#?\s*[123]/i.test(text || "");
  let out = `<span class="${n > limit ? "over" : ""}">${n} / ${limit}</span>`;
  if (n > limit) out += zh ? " · 超出部分会被截断" : " · the rest will be cut off";
  if (images >= 2 && !named && n > 0)
    out += zh ? " · 多图编辑请用 图1、图2、图3 指代图片" : " · with several images, name them 图1, 图2, 图3";
  return out;
};
