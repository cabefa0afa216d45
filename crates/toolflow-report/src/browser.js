// The dialogue browser. Every piece of dialogue text reaches the page through textContent,
// never through markup. `?q=` (or `#q=`) sets the initial search; `#dialogue=ID` selects one.
"use strict";
(function () {
  const dataElement = document.getElementById("dialogue-data");
  if (!dataElement) return;
  const dialogues = JSON.parse(dataElement.textContent);
  const search = document.getElementById("search");
  const list = document.getElementById("dialogue-list");
  const count = document.getElementById("match-count");
  const detail = document.getElementById("dialogue-detail");
  // Building thousands of list items on each keystroke is slow; the rest are one search away.
  const LIST_LIMIT = 500;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function callsOf(dialogue) {
    const calls = [];
    for (const turn of dialogue.turns) {
      if (turn.role === "assistant") for (const call of turn.tool_calls || []) calls.push(call);
    }
    return calls;
  }

  function hasError(dialogue) {
    return dialogue.turns.some((turn) => turn.role === "tool" && turn.is_error);
  }

  // Everything a search can match, lowercased once.
  for (const d of dialogues) {
    const parts = [d.id, String(d.index)];
    for (const tool of d.tools) parts.push(tool.name);
    if (d.plan) for (const step of d.plan.steps) parts.push(step.request);
    for (const turn of d.turns) {
      if (turn.content !== null && turn.content !== undefined) {
        parts.push(typeof turn.content === "string" ? turn.content : JSON.stringify(turn.content));
      }
      if (turn.name) parts.push(turn.name);
      for (const call of turn.tool_calls || []) {
        parts.push(call.name, call.id, JSON.stringify(call.arguments), call.arguments_raw || "");
      }
    }
    for (const reason of d.rejected || []) parts.push(reason.rule, reason.detail);
    d.haystack = parts.join("\n").toLowerCase();
  }

  let selectedId = null;

  function matches(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    return dialogues.filter((d) => words.every((word) => d.haystack.includes(word)));
  }

  function firstUserText(d) {
    const turn = d.turns.find((t) => t.role === "user");
    return turn ? turn.content : "(no user turn)";
  }

  function badge(text, kind) {
    return el("span", "badge " + kind, text);
  }

  function renderList(found) {
    list.replaceChildren();
    const shown = found.slice(0, LIST_LIMIT);
    for (const d of shown) {
      const item = el("li", "dialogue-item");
      item.dataset.id = d.id;
      if (d.id === selectedId) item.classList.add("selected");
      const button = el("button");
      button.type = "button";
      const head = el("span", "item-head");
      head.append(el("code", "item-id", d.id));
      if (d.rejected) head.append(badge("rejected", "reject"));
      if (hasError(d)) head.append(badge("tool error", "error"));
      if (d.outcome.status !== "completed") head.append(badge(d.outcome.status, "warn"));
      button.append(head, el("span", "item-text", firstUserText(d)));
      const names = [...new Set(callsOf(d).map((call) => call.name))];
      button.append(el("span", "item-meta", d.turns.length + " turns · " + (names.join(", ") || "no calls")));
      button.addEventListener("click", () => select(d.id, true));
      item.append(button);
      list.append(item);
    }
    count.textContent =
      found.length === dialogues.length
        ? dialogues.length + " dialogues"
        : found.length + " of " + dialogues.length + " dialogues match";
    if (found.length > shown.length) count.textContent += " (first " + shown.length + " listed)";
  }

  function dl(pairs) {
    const list = el("dl", "facts");
    for (const [term, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      list.append(el("dt", null, term), el("dd", null, value));
    }
    return list;
  }

  function renderTurn(turn, number, flagged) {
    const box = el("div", "turn role-" + turn.role);
    if (turn.role === "tool" && turn.is_error) box.classList.add("error");
    if (flagged.has(number)) box.classList.add("flagged");
    const head = el("div", "turn-head");
    head.append(el("span", "role", turn.role), el("span", "turn-number", "#" + number));
    if (turn.plan_step) head.append(el("span", "muted", "plan step " + turn.plan_step));
    if (turn.role === "tool") {
      head.append(el("code", null, turn.name), el("span", "muted", "answers " + turn.tool_call_id));
      if (turn.is_error) head.append(badge("error", "error"));
    }
    if (turn.generation) head.append(el("span", "model", turn.generation.model));
    box.append(head);
    if (turn.role === "tool") {
      box.append(el("pre", "json", pretty(turn.content)));
    } else if (turn.content !== null && turn.content !== undefined) {
      box.append(el("p", "content", turn.content));
    }
    for (const call of turn.tool_calls || []) {
      const callBox = el("div", "call");
      const callHead = el("div", "call-head");
      callHead.append(el("span", "muted", "calls"), el("code", "call-name", call.name), el("span", "muted", call.id));
      callBox.append(callHead);
      if (call.arguments_raw !== undefined && call.arguments_raw !== null) {
        callBox.append(el("p", "muted", "arguments did not parse:"), el("pre", "json error", call.arguments_raw));
      } else {
        callBox.append(el("pre", "json", pretty(call.arguments)));
      }
      box.append(callBox);
    }
    return box;
  }

  function renderDetail(d) {
    detail.replaceChildren();
    if (!d) {
      delete detail.dataset.id;
      detail.append(el("p", "muted", "No dialogue matches."));
      return;
    }
    detail.dataset.id = d.id;
    const title = el("h3");
    title.append(el("code", null, d.id));
    title.append(badge(d.outcome.status, d.outcome.status === "completed" ? "ok" : "warn"));
    if (d.rejected) title.append(badge("rejected", "reject"));
    detail.append(title);
    const models = Object.entries(d.settings.models || {}).map(([role, model]) => role + ": " + model).join(", ");
    detail.append(
      dl([
        ["index", d.index],
        ["time", d.context.current_time],
        ["location", d.context.location],
        ["user style", d.settings.user_style],
        ["sampler", d.settings.sampler],
        ["models", models],
        ["steps done", d.outcome.steps_done + (d.plan ? " of " + d.plan.steps.length : "")],
        ["ended", d.outcome.reason],
        ["tokens", d.usage.prompt_tokens + " prompt, " + d.usage.completion_tokens + " completion"],
      ]),
    );
    const flagged = new Set();
    if (d.rejected) {
      const box = el("div", "reasons");
      box.append(el("h4", null, "Filter reasons"));
      const items = el("ul");
      for (const reason of d.rejected) {
        const item = el("li", reason.level);
        item.append(badge(reason.level, reason.level === "reject" ? "reject" : "warn"), el("code", null, reason.rule));
        if (reason.pointer) item.append(el("code", "pointer", reason.pointer));
        item.append(el("span", null, reason.detail));
        if (reason.turn !== null && reason.turn !== undefined) flagged.add(reason.turn);
        items.append(item);
      }
      box.append(items);
      detail.append(box);
    }
    if (d.plan) {
      detail.append(el("h4", null, "Plan"));
      const steps = el("ol", "plan");
      for (const step of d.plan.steps) {
        const item = el("li");
        item.value = step.number;
        item.append(badge(step.kind, step.kind === "tool-call" ? "call" : "chat"), el("span", null, step.request));
        steps.append(item);
      }
      detail.append(steps);
    } else {
      detail.append(el("p", "muted", "No plan (plan-off ablation or human data)."));
    }
    const tools = el("details", "tools");
    tools.append(el("summary", null, "Tools offered (" + d.tools.length + ")"));
    const toolList = el("ul");
    for (const tool of d.tools) {
      const item = el("li");
      item.append(el("code", null, tool.name), el("span", "muted", " " + tool.description));
      toolList.append(item);
    }
    tools.append(toolList);
    detail.append(tools);
    detail.append(el("h4", null, "Turns"));
    const turns = el("div", "turns");
    d.turns.forEach((turn, i) => turns.append(renderTurn(turn, i, flagged)));
    detail.append(turns);
  }

  function select(id, fromClick) {
    const d = dialogues.find((x) => x.id === id);
    selectedId = d ? d.id : null;
    for (const item of list.children) item.classList.toggle("selected", item.dataset.id === selectedId);
    renderDetail(d);
    if (fromClick && window.innerWidth < 900) detail.scrollIntoView();
  }

  function update() {
    const found = matches(search.value);
    if (!found.some((d) => d.id === selectedId)) selectedId = found.length ? found[0].id : null;
    renderList(found);
    renderDetail(found.find((d) => d.id === selectedId));
  }

  function fromHash() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const wanted = hash.get("dialogue");
    if (wanted !== null && dialogues.some((d) => d.id === wanted)) {
      if (!matches(search.value).some((d) => d.id === wanted)) search.value = "";
      selectedId = wanted;
      update();
      document.getElementById("browser").scrollIntoView();
    }
  }

  search.value = new URLSearchParams(location.search).get("q") || new URLSearchParams(location.hash.slice(1)).get("q") || "";
  search.addEventListener("input", update);
  window.addEventListener("hashchange", fromHash);
  update();
  fromHash();
})();
