"""Renders TRL rows the way TRL does (transformers' own chat-template renderer, the
row's chat_template_kwargs as extra variables) and prints the texts as a JSON list.

    python render_check.py tokenizer_config.json trl_train.jsonl
"""
import json
import sys

from transformers.utils.chat_template_utils import render_jinja_template

config = json.load(open(sys.argv[1]))
template = config["chat_template"]
if isinstance(template, list):
    named = {entry["name"]: entry["template"] for entry in template}
    template = named.get("tool_use") or named["default"]
token = lambda name: (config.get(name) or {}).get("content") if isinstance(config.get(name), dict) else config.get(name, "")
texts = []
for line in open(sys.argv[2]):
    row = json.loads(line)
    rendered, _ = render_jinja_template(
        conversations=[row["messages"]],
        tools=row.get("tools"),
        chat_template=template,
        bos_token=token("bos_token"),
        eos_token=token("eos_token"),
        **row.get("chat_template_kwargs", {}),
    )
    texts.append(rendered[0])
print(json.dumps(texts))
