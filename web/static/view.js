"use strict";
// Bring the cited sentence to the middle of the screen.
document.addEventListener("DOMContentLoaded", () => {
  const cited = document.getElementById("cited");
  if (cited) cited.scrollIntoView({ block: "center" });
});
