// The console's only script. It checks a resident ID's check character
// (GB 11643) as it is typed, and enables only the chosen item's material
// inputs. The node checks everything again; without this script the forms
// still work.
"use strict";

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";

// "" when `id` is a well-formed 18-character ID, else what is wrong, in words.
function residentIdProblem(id) {
  if (id.length === 0) return "";
  if (!/^[0-9]{17}[0-9X]$/.test(id)) {
    return id.length < 18 ? "" : "应为 17 位数字加 1 位校验码（数字或 X）";
  }
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(id[i]) * WEIGHTS[i];
  const want = CHECK[sum % 11];
  return id[17] === want ? "" : "校验码不对：按前 17 位应为 " + want;
}

function watchResidentId(input) {
  const out = document.getElementById(input.id + "-error");
  const check = () => {
    input.value = input.value.toUpperCase();
    const problem = residentIdProblem(input.value.trim());
    input.setCustomValidity(problem);
    input.setAttribute("aria-invalid", problem ? "true" : "false");
    if (out) out.textContent = problem;
  };
  input.addEventListener("input", check);
  input.form.addEventListener("submit", (e) => {
    const id = input.value.trim();
    const problem = id.length !== 18 ? "应为 18 位" : residentIdProblem(id);
    if (problem) {
      e.preventDefault();
      if (out) out.textContent = problem;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  check();
}

function watchItem(select) {
  const show = () => {
    const item = select.selectedOptions[0] ? select.selectedOptions[0].dataset.item : "";
    for (const set of document.querySelectorAll("[data-materials-for]")) {
      const on = set.dataset.materialsFor === item;
      set.hidden = !on;
      set.disabled = !on;
    }
  };
  select.addEventListener("change", show);
  show();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-resident-id]")) watchResidentId(input);
  const route = document.getElementById("route");
  if (route) watchItem(route);
});
