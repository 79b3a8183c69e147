// Progressive enhancement only: every page works without it.
// Filter controls marked data-autosubmit submit their form when changed.
document.addEventListener("change", function (event) {
  var field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
});
