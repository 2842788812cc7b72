// Progressive enhancement only: every page works without this file.
// On the preferences page, when no time zone is stored yet, preselect the
// browser's own.
document.addEventListener("DOMContentLoaded", function () {
  var sel = document.querySelector("select[data-from-browser]");
  if (!sel || !window.Intl) return;
  var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (var i = 0; i < sel.options.length; i++) {
    if (sel.options[i].value === tz) { sel.selectedIndex = i; return; }
  }
});
