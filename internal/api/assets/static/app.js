// The dashboard reads without this script; with it, the live part of a page is refreshed
// in place (never while a form on it is being filled in), and a run's output is streamed.
"use strict";

(function () {
  const body = document.body;
  const every = Number(body.dataset.refresh || 0);
  const busy = () => {
    const a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA") && a.value !== "";
  };
  // The output element is kept across refreshes: the stream appends to it.
  const output = document.getElementById("output");

  async function refresh() {
    if (!busy()) {
      try {
        const res = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
        // An error page is shown too: it says what failed (Redis down, the job removed)
        // instead of leaving the last good page in place as if it were current.
        if ((res.headers.get("Content-Type") || "").startsWith("text/html")) {
          const doc = new DOMParser().parseFromString(await res.text(), "text/html");
          const fresh = doc.getElementById("live");
          const live = document.getElementById("live");
          if (fresh && live) {
            const focused = document.activeElement && document.activeElement.id;
            if (output) {
              const slot = fresh.querySelector("#output");
              if (slot) slot.replaceWith(output);
            }
            live.replaceWith(fresh);
            if (focused) { const el = document.getElementById(focused); if (el) el.focus(); }
          }
        }
      } catch (e) { /* the next refresh tries again */ }
    }
    setTimeout(refresh, every * 1000);
  }
  if (every > 0) setTimeout(refresh, every * 1000);

  async function stream() {
    const occ = output.dataset.occurrence;
    let after = output.dataset.cursor || "";
    for (;;) {
      let chunk;
      try {
        const res = await fetch("/v1/runs/" + encodeURIComponent(occ) + "/output?wait=10s&after=" + encodeURIComponent(after),
          { credentials: "same-origin" });
        if (!res.ok) throw new Error(res.statusText);
        chunk = await res.json();
      } catch (e) {
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      // The page was rendered with the lines up to its cursor; a page without any shows
      // the run's record until the stream has lines.
      if (after === "" && chunk.lines.length > 0) output.textContent = "";
      for (const l of chunk.lines) {
        output.textContent += l.end ? "[attempt " + l.attempt + " ended: " + l.end + "]\n" : l.text + "\n";
      }
      if (chunk.lines.length > 0) output.scrollTop = output.scrollHeight;
      after = chunk.next;
      if (chunk.ended) {
        const note = document.getElementById("running");
        if (note) note.remove();
        return;
      }
      // A reader that the node let not wait (enough wait already) polls gently.
      if (chunk.lines.length === 0) await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (output && !("ended" in output.dataset)) stream();
})();
