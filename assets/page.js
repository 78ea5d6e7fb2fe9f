// The page's own script (app.launch passes it to Gradio, which runs it once on load).
() => {
  // The presenter view (?view=present): assets/lessons.css hides the settings and enlarges the type.
  if (new URLSearchParams(location.search).get("view") === "present") document.body.classList.add("um-present");
  // "How to read this" is open on a first visit and folded on later ones.
  const seen = localStorage.getItem("unmask-seen");
  localStorage.setItem("unmask-seen", "1");
  const fold = () => {
    const details = document.querySelector("#um-how-to-read details");
    if (details && seen) details.open = false;
    return details !== null;
  };
  if (!fold()) {
    const timer = setInterval(() => fold() && clearInterval(timer), 100);
    setTimeout(() => clearInterval(timer), 15000);
  }
  // The left / right arrow keys press Previous / Next step, unless the focus is in a field that uses them.
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const id = {ArrowLeft: "um-previous", ArrowRight: "um-next"}[event.key];
    const button = id && document.getElementById(id);
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
}
