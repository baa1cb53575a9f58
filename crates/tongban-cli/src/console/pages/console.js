// The console's only script. It checks the check characters of resident
// IDs (GB 11643), unified social credit codes (GB 32100) and UPU S10
// waybills as they are typed, enables only the chosen item's material
// inputs and the chosen kind of applicant, and shows uploads' progress.
// The node checks everything again; without this script the forms still
// work.
"use strict";

// The page's language decides the script's words too.
function say(zh, en) {
  return document.documentElement.lang === "en" ? en : zh;
}

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";

// "" when `id` is a well-formed 18-character ID, else what is wrong, in words.
function residentIdProblem(id) {
  if (id.length === 0) return "";
  if (!/^[0-9]{17}[0-9X]$/.test(id)) {
    return id.length < 18 ? "" : say("应为 17 位数字加 1 位校验码（数字或 X）", "should be 17 digits and a check character (a digit or X)");
  }
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(id[i]) * WEIGHTS[i];
  const want = CHECK[sum % 11];
  return id[17] === want ? "" : say("校验码不对：按前 17 位应为 ", "wrong check character: from the first 17 it should be ") + want;
}

const CREDIT = "0123456789ABCDEFGHJKLMNPQRTUWXY";

// "" when `code` is a well-formed unified social credit code (or still
// being typed), else what is wrong.
function creditCodeProblem(code) {
  if (code.length === 0) return "";
  for (let i = 0; i < code.length; i++) {
    if (CREDIT.indexOf(code[i]) < 0) {
      return say("第 " + (i + 1) + " 位 " + code[i] + " 不是信用代码用字（数字或除 I、O、S、V、Z 外的大写字母）", "character " + (i + 1) + " (" + code[i] + ") is not used in credit codes (digits, capitals but I, O, S, V, Z)");
    }
  }
  if (code.length < 18) return "";
  if (code.length > 18) return say("应为 18 位", "should be 18 characters");
  let sum = 0;
  let weight = 1;
  for (let i = 0; i < 17; i++) {
    sum += CREDIT.indexOf(code[i]) * weight;
    weight = (weight * 3) % 31;
  }
  const want = CREDIT[(31 - (sum % 31)) % 31];
  return code[17] === want ? "" : say("校验码不对：按前 17 位应为 ", "wrong check character: from the first 17 it should be ") + want;
}

const S10_WEIGHTS = [8, 6, 4, 2, 3, 5, 9, 7];

// "" when `no` is a waybill (UPU S10 with its check digit, or 13 digits)
// or still being typed, else what is wrong.
function waybillProblem(no) {
  if (no.length < 13) return "";
  if (/^[0-9]{13}$/.test(no)) return "";
  if (!/^[A-Z]{2}[0-9]{9}[A-Z]{2}$/.test(no)) return say("应为 2 位字母 + 9 位数字 + 2 位字母（如 EA473124829CN），或 13 位数字", "should be 2 letters, 9 digits, 2 letters (like EA473124829CN), or 13 digits");
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += Number(no[2 + i]) * S10_WEIGHTS[i];
  let want = 11 - (sum % 11);
  if (want === 10) want = 0;
  if (want === 11) want = 5;
  return no[10] === String(want) ? "" : say("校验位不对：按前 8 位数字应为 ", "wrong check digit: from the 8 serial digits it should be ") + want;
}

// Checks `input` with `problemOf` as it is typed and stops a submit while
// the value is wrong, the words in the field's `-error` span.
function watchCode(input, problemOf, length) {
  const out = document.getElementById(input.id + "-error");
  const check = () => {
    input.value = input.value.toUpperCase();
    const problem = problemOf(input.value.trim());
    input.setCustomValidity(problem);
    input.setAttribute("aria-invalid", problem ? "true" : "false");
    if (out) out.textContent = problem;
  };
  input.addEventListener("input", check);
  input.form.addEventListener("submit", (e) => {
    if (input.matches(":disabled")) return;
    const value = input.value.trim();
    const problem = value.length !== length ? say("应为 " + length + " 位", "should be " + length + " characters") : problemOf(value);
    if (problem) {
      e.preventDefault();
      if (out) out.textContent = problem;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  // The console's own words at the field (a page sent back) stay until
  // the value is typed again.
  if (out && out.textContent) input.setAttribute("aria-invalid", "true");
  else check();
}

// A person or a company: only the chosen kind's fields are shown and sent.
function watchApplicant(radios) {
  const show = () => {
    const chosen = radios.find((r) => r.checked);
    const kind = chosen ? chosen.value : "person";
    for (const set of document.querySelectorAll("[data-applicant]")) {
      const on = set.dataset.applicant === kind;
      set.hidden = !on;
      set.disabled = !on;
    }
  };
  for (const r of radios) r.addEventListener("change", show);
  show();
}

function watchItem(select) {
  const delivery = document.getElementById("delivery");
  const show = () => {
    const chosen = select.selectedOptions[0];
    const item = chosen ? chosen.dataset.item : "";
    for (const set of document.querySelectorAll("[data-materials-for]")) {
      const on = set.dataset.materialsFor === item;
      set.hidden = !on;
      set.disabled = !on;
    }
    // Only the item's delivery modes can be chosen.
    if (delivery && chosen && chosen.dataset.delivery) {
      const allowed = chosen.dataset.delivery.split(" ");
      for (const o of delivery.options) o.disabled = !allowed.includes(o.value);
      if (delivery.selectedOptions[0] && delivery.selectedOptions[0].disabled) {
        const first = Array.from(delivery.options).find((o) => !o.disabled);
        if (first) first.selected = true;
      }
    }
  };
  select.addEventListener("change", show);
  show();
}

// While someone types into a form, tell the console now and then that the
// session is in use, so a long form does not outlive the idle limit; if the
// session has ended anyway, say so at once, before the form is sent.
const ALIVE_EVERY_MS = 30000;
function keepAlive() {
  let last = 0;
  const ping = () => {
    const now = Date.now();
    if (now - last < ALIVE_EVERY_MS) return;
    last = now;
    fetch("/session/alive", { method: "POST", credentials: "same-origin" })
      .then((r) => {
        if (r.status === 401) {
          const banner = document.getElementById("session-ended");
          if (banner) banner.hidden = false;
        }
      })
      .catch(() => {});
  };
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("input", ping);
  }
}

// Forms with files go by XMLHttpRequest so the clerk sees the upload's
// progress; what the console answers is then shown as if the form had been
// sent the ordinary way. If the console itself cannot be reached, the form
// stays as it is, files and all, and sending it again sends the same
// request id.
function uploadWithProgress(form) {
  const button = form.querySelector("button[type=submit]");
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.hidden = true;
  const note = document.createElement("span");
  note.className = "upload-note";
  note.setAttribute("aria-live", "polite");
  form.insertBefore(bar, button);
  form.insertBefore(note, button);
  form.addEventListener("submit", (e) => {
    if (e.defaultPrevented) return;
    e.preventDefault();
    const body = new FormData(form);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", (p) => {
      if (!p.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.round((100 * p.loaded) / p.total);
      note.textContent = " " + say("已上传 ", "uploaded ") + bar.value + "%";
    });
    xhr.addEventListener("load", () => {
      const sent = new URL(form.action, location.href).href;
      if (xhr.responseURL && xhr.responseURL !== sent) {
        location.assign(xhr.responseURL);
      } else {
        show(xhr.responseText);
      }
    });
    xhr.addEventListener("error", () => {
      bar.hidden = true;
      note.textContent = " " + say(
        "控制台没有响应：表单和所选文件都还在，请稍后再点提交（请求编号不变）。",
        "The console did not answer: the form and its files are still here; send it again later (the same request id).",
      );
      if (button) button.disabled = false;
    });
    if (button) button.disabled = true;
    xhr.send(body);
  });
}

// Shows a page the console answered in place of this one.
function show(html) {
  const page = new DOMParser().parseFromString(html, "text/html");
  document.title = page.title;
  document.documentElement.lang = page.documentElement.lang;
  document.body.replaceWith(page.body);
  init();
}

function init() {
  keepAlive();
  for (const input of document.querySelectorAll("input[data-resident-id]")) watchCode(input, residentIdProblem, 18);
  for (const input of document.querySelectorAll("input[data-credit-code]")) watchCode(input, creditCodeProblem, 18);
  for (const input of document.querySelectorAll("input[data-waybill]")) watchCode(input, waybillProblem, 13);
  const kinds = Array.from(document.querySelectorAll("input[name=applicant]"));
  if (kinds.length) watchApplicant(kinds);
  const route = document.getElementById("route");
  if (route) watchItem(route);
  // Last, so the checks above can stop a submit first.
  for (const form of document.querySelectorAll("form[enctype='multipart/form-data']")) uploadWithProgress(form);
}

document.addEventListener("DOMContentLoaded", init);
