#!/usr/bin/env python3
"""Checks the mock against the official OpenAI Python SDK (optional, not run by cargo).

Setup: python3 -m venv venv && venv/bin/pip install openai
Run:   mock-openai --port 0 --rules official_sdk_rules.json   # prints listening on http://127.0.0.1:PORT
       venv/bin/python official_sdk_check.py http://127.0.0.1:PORT/v1
"""
import json, sys
from openai import OpenAI, RateLimitError, APIConnectionError
from pydantic import BaseModel

base = sys.argv[1]
c = OpenAI(base_url=base, api_key="sk-test", max_retries=2)

class Report(BaseModel):
    title: str
    summary: str
    key_points: list[str]
    confidence: float

tools_resp = [{"type": "function", "name": "lookup_facts", "description": "x",
               "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                              "required": ["query", "limit"], "additionalProperties": False}, "strict": True}]
tools_chat = [{"type": "function", "function": {"name": "lookup_facts", "description": "x",
               "parameters": tools_resp[0]["parameters"], "strict": True}}]

r = c.responses.create(model="gpt-4.1-mini", input="topic #0", instructions="plan")
assert r.output_text == "reply 0ef48f27d74c5551", r.output_text
print("responses.create ok", r.usage.input_tokens, r.usage.output_tokens)

events = list(c.responses.create(model="gpt-4.1-mini", input="topic #0", stream=True))
types = [e.type for e in events]
assert types[0] == "response.created" and types[-1] == "response.completed", types
assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "reply 0ef48f27d74c5551"
print("responses stream ok", len(events))

with c.responses.stream(model="gpt-4.1-mini", input="topic #0") as s:
    for _ in s: pass
    final = s.get_final_response()
assert final.output_text == "reply 0ef48f27d74c5551"
print("responses.stream helper ok")

r = c.responses.create(model="gpt-4.1-mini", input="q", instructions="[[use_tool]]", tools=tools_resp)
call = r.output[0]
assert call.type == "function_call" and call.name == "lookup_facts", r.output
args = json.loads(call.arguments)
r2 = c.responses.create(model="gpt-4.1-mini", instructions="[[use_tool]]", tools=tools_resp,
    input=[{"role": "user", "content": "q"}, call.model_dump(exclude_none=True),
           {"type": "function_call_output", "call_id": call.call_id, "output": "facts"}])
assert r2.output_text.startswith("reply "), r2.output
print("responses tools ok", args)

with c.responses.stream(model="gpt-4.1-mini", input="q", instructions="[[use_tool]]", tools=tools_resp) as s:
    for _ in s: pass
    final = s.get_final_response()
assert final.output[0].type == "function_call"
print("responses tool stream ok")

p = c.responses.parse(model="gpt-4.1-mini", input="notes", text_format=Report)
assert isinstance(p.output_parsed, Report), p
print("responses.parse ok", p.output_parsed.title)

cc = c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "topic #0"}])
assert cc.choices[0].message.content == "reply 0ef48f27d74c5551"
chunks = list(c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "topic #0"}],
                                        stream=True, stream_options={"include_usage": True}))
assert "".join((ch.choices[0].delta.content or "") for ch in chunks if ch.choices) == "reply 0ef48f27d74c5551"
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
print("chat ok", len(chunks))

cc = c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "system", "content": "[[use_tool]]"}, {"role": "user", "content": "q"}], tools=tools_chat)
tc = cc.choices[0].message.tool_calls[0]
assert cc.choices[0].finish_reason == "tool_calls" and tc.function.name == "lookup_facts"
with c.chat.completions.stream(model="gpt-4.1-mini", messages=[{"role": "system", "content": "[[use_tool]]"}, {"role": "user", "content": "q"}], tools=tools_chat) as s:
    for _ in s: pass
    fc = s.get_final_completion()
assert fc.choices[0].message.tool_calls[0].function.arguments == tc.function.arguments
print("chat tools ok")

pc = c.chat.completions.parse(model="gpt-4.1-mini", messages=[{"role": "user", "content": "notes"}], response_format=Report)
assert isinstance(pc.choices[0].message.parsed, Report)
print("chat.parse ok")

r = c.responses.create(model="gpt-4.1-mini", input="retry me")
print("retry ok", r.output_text)
try:
    c.with_options(max_retries=0).responses.create(model="gpt-4.1-mini", input="always limited")
except RateLimitError as e:
    print("429 ok", e.response.headers.get("retry-after"), e.body)
models = c.models.list()
print("models ok", [m.id for m in models.data][:2])

# Reply styles (x-mock-style): every style must still give the same text and
# tool call through the SDK's create / stream helpers.
STYLES = ["no_usage", "bare_usage", "minimal", "extra", "data_only", "responses_done", "no_done",
          "usage_in_choice", "whole_tool_call", "split_tool_args", "role_in_content",
          "finish_on_content", "keepalive", "crlf"]
want = "reply 0ef48f27d74c5551"
for style in STYLES:
    s = c.with_options(default_headers={"x-mock-style": style})
    r = s.responses.create(model="gpt-4.1-mini", input="topic #0")
    assert r.output_text == want, (style, r)
    with s.responses.stream(model="gpt-4.1-mini", input="topic #0") as st:
        for _ in st: pass
        assert st.get_final_response().output_text == want, style
    with s.responses.stream(model="gpt-4.1-mini", input="q", instructions="[[use_tool]]", tools=tools_resp) as st:
        for _ in st: pass
        fr = st.get_final_response()
    calls = [o for o in fr.output if o.type == "function_call"]
    assert calls and json.loads(calls[0].arguments) == args, (style, fr.output)
    cc = s.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "topic #0"}])
    assert cc.choices[0].message.content == want, (style, cc)
    with s.chat.completions.stream(model="gpt-4.1-mini", messages=[{"role": "user", "content": "topic #0"}],
                                   stream_options={"include_usage": True}) as st:
        for _ in st: pass
        assert st.get_final_completion().choices[0].message.content == want, style
    with s.chat.completions.stream(model="gpt-4.1-mini", messages=[{"role": "system", "content": "[[use_tool]]"}, {"role": "user", "content": "q"}], tools=tools_chat) as st:
        for _ in st: pass
        fc = st.get_final_completion()
    assert fc.choices[0].message.tool_calls[0].function.arguments == tc.function.arguments, style
    p = s.responses.parse(model="gpt-4.1-mini", input="notes", text_format=Report)
    assert isinstance(p.output_parsed, Report), (style, p)
    pc = s.chat.completions.parse(model="gpt-4.1-mini", messages=[{"role": "user", "content": "notes"}], response_format=Report)
    assert isinstance(pc.choices[0].message.parsed, Report), style
    print("style ok", style)

# Hosted tools ([[use_hosted]]) and the MCP approval round trip.
hosted = [{"type": "web_search_preview"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
          {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"},
          {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp",
           "require_approval": "never"}]
r = c.responses.create(model="gpt-4.1-mini", input="weather [[use_hosted]]", tools=hosted)
assert [o.type for o in r.output] == ["web_search_call", "file_search_call", "code_interpreter_call",
                                      "image_generation_call", "mcp_call", "message"], r.output
assert r.output[3].result.startswith("iVBORw0KGgo") and r.output_text.startswith("reply ")
with c.responses.stream(model="gpt-4.1-mini", input="weather [[use_hosted]]", tools=hosted) as st:
    types = [e.type for e in st]
    final = st.get_final_response()
assert "response.web_search_call.searching" in types and "response.mcp_call.completed" in types, types
assert [o.type for o in final.output] == [o.type for o in r.output]
mcp = [{"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp"}]
r = c.responses.create(model="gpt-4.1-mini", input="ask [[use_hosted]]", tools=mcp)
req = r.output[0]
assert req.type == "mcp_approval_request", r.output
r2 = c.responses.create(model="gpt-4.1-mini", tools=mcp, input=[
    {"role": "user", "content": "ask [[use_hosted]]"}, req.model_dump(exclude_none=True),
    {"type": "mcp_approval_response", "approval_request_id": req.id, "approve": True}])
assert r2.output[0].type == "mcp_call" and r2.output[0].approval_request_id == req.id, r2.output
print("hosted ok", [o.type for o in r.output], [o.type for o in r2.output])
