// The adjustment form: choosing a client reloads the form with that client's subscriptions
// and currency (without JavaScript the "Choose" button does the same).
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("choose-client");
  if (select) select.addEventListener("change", () => select.form.submit());
});
