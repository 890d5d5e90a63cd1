// The pages' own script, loaded from a file: the Content-Security-Policy allows no inline script.

// 422 carries a re-rendered fragment with the refusal in it: swap it like a success (htmx skips 4xx by default).
document.addEventListener("htmx:beforeSwap", function (e) {
  if (e.detail.xhr.status === 422) { e.detail.shouldSwap = true; e.detail.isError = false; }
});
