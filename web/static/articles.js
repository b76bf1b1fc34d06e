"use strict";
// The articles page's filter box: hides the rows whose title, outlet and
// date (as shown, or YYYY-MM-DD) do not all hold the words typed, any case.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("article-filter");
  const rows = Array.from(document.querySelectorAll("#articles tbody tr"));
  const none = document.getElementById("no-match");
  const fold = (text) =>
    text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  const texts = rows.map((row) => {
    const time = row.querySelector("time");
    return fold(`${row.textContent} ${time ? time.getAttribute("datetime") : ""}`);
  });
  box.addEventListener("input", () => {
    const words = fold(box.value).split(/\s+/).filter(Boolean);
    let shown = 0;
    rows.forEach((row, i) => {
      row.hidden = !words.every((w) => texts[i].includes(w));
      if (!row.hidden) shown += 1;
    });
    none.hidden = shown > 0;
  });
});
