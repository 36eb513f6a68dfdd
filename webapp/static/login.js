// The login page is Gradio's own: it loads none of the app's scripts and reacts only to a 400 (a
// wrong password). When the login throttle (webapp/middleware/logins.py) answers 429, this says so
// on the page, in the visitor's language, counting down the wait the answer's Retry-After gives.
// `window.JUHE_LOGIN` (the words, "zh" and "en") is written just before this file.
(() => {
  const chinese = () => {
    let chosen = null;
    try {
      chosen = localStorage.getItem("juhe-lang"); // the page's language switch, as app.js keeps it
    } catch {}
    return (chosen || navigator.language || "").toLowerCase().startsWith("zh");
  };
  let timer = null;
  const showWait = (seconds) => {
    let note = document.getElementById("login-wait");
    if (!note) {
      note = document.createElement("p");
      note.id = "login-wait";
      note.setAttribute("role", "alert");
      note.style.cssText = "color: #c0392b; font-weight: 600; text-align: center; margin: 8px 0;";
      const button = document.querySelector("button.primary");
      if (button) button.before(note);
      else document.body.prepend(note);
    }
    let left = seconds;
    const draw = () => {
      note.textContent = (chinese() ? window.JUHE_LOGIN.zh : window.JUHE_LOGIN.en).replace("{wait}", String(left));
    };
    draw();
    clearInterval(timer);
    timer = setInterval(() => {
      left -= 1;
      if (left > 0) return draw();
      clearInterval(timer);
      note.remove(); // the wait is over: the form works again
    }, 1000);
  };
  const original = window.fetch;
  window.fetch = async (...args) => {
    const response = await original(...args);
    const url = String(args[0] instanceof Request ? args[0].url : args[0]);
    if (response.status === 429 && /\/login\/?$/.test(new URL(url, location.href).pathname)) {
      showWait(Math.max(1, parseInt(response.headers.get("Retry-After") || "60", 10) || 60));
    }
    return response;
  };
})();
