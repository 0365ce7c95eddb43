//! Every example plugin — Rust, JavaScript and Python — loaded from
//! `plugins/` and every entry called with real inputs.

use crate::common::{ctx, examples, result, runtime, within};
use host::plugin::{CallContext, CallErrorKind, Kind, Phase};
use serde_json::{Value, json};

fn with_entry(mut c: CallContext, entry: &str) -> CallContext {
    c.entry = entry.into();
    c
}

#[tokio::test]
async fn every_example_describes_its_entries() {
    let reg = within(300, "load examples", examples()).await;
    let kinds = |name: &str| reg.get(name).map(|p| p.kinds()).unwrap_or_default();
    assert_eq!(kinds("concat"), [Kind::Reducer]);
    assert_eq!(kinds("keyword_guard"), [Kind::Guard]);
    assert_eq!(kinds("template_mapper"), [Kind::InputMapper]);
    assert_eq!(kinds("calculator"), [Kind::Tool]);
    assert_eq!(kinds("pii_guardrail"), [Kind::Guardrail]);
    assert_eq!(kinds("lookup_facts"), [Kind::Tool]);
    assert_eq!(kinds("js_collect"), [Kind::Reducer]);
    assert_eq!(kinds("py_regex_guard"), [Kind::Guard]);
    for p in reg.plugins() {
        assert_eq!(p.wit_version(), "0.1.1", "{}", p.name());
        assert_eq!(p.digest().len(), 64, "{}", p.name());
    }
}

#[tokio::test]
async fn concat_joins_branch_outputs_in_order() {
    let reg = within(300, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, entry) = reg.resolve("concat", Kind::Reducer).unwrap();
    let mut skipped = result("fan", "b", Some(1), Value::Null);
    skipped.skipped = true;
    let outputs = [
        result("fan", "a", Some(0), json!("alpha")),
        skipped,
        result("fan", "c", Some(2), json!({"n": 1})),
    ];
    let c = with_entry(ctx(json!({"separator": " | "})), &entry);
    let out = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap();
    assert_eq!(out.value, json!("alpha | {\"n\":1}"));
    assert_eq!(&*out.digest, plugin.digest());

    let c = with_entry(ctx(json!({"headers": true})), &entry);
    let out = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap();
    assert_eq!(out.value, json!("## a\nalpha\n\n## c\n{\"n\":1}"));

    let c = with_entry(ctx(json!({"separator": 5})), &entry);
    let err = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap_err();
    assert!(
        matches!(&err.kind, CallErrorKind::Guest(m) if m.contains("separator must be a string")),
        "{err}"
    );
}

#[tokio::test]
async fn keyword_guard_decides_by_keywords_or_length() {
    let reg = within(300, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, entry) = reg
        .resolve("keyword_guard#keyword_guard", Kind::Guard)
        .unwrap();
    let check = |config: Value, input: Value| {
        let c = with_entry(ctx(config), &entry);
        let plugin = plugin.clone();
        let rt = rt.clone();
        async move { plugin.guard(&rt, &c, &input, &[]).await }
    };
    let kw = json!({"keywords": ["lisbon", "porto"]});
    assert!(
        check(kw.clone(), json!("Plan a trip to LISBON"))
            .await
            .unwrap()
            .value
    );
    assert!(
        !check(kw.clone(), json!("Plan a trip to Paris"))
            .await
            .unwrap()
            .value
    );
    let all = json!({"keywords": ["lisbon", "porto"], "mode": "all"});
    assert!(
        !check(all.clone(), json!("lisbon only"))
            .await
            .unwrap()
            .value
    );
    assert!(check(all, json!("lisbon and porto")).await.unwrap().value);
    let len = json!({"min_length": 10});
    assert!(
        check(len.clone(), json!("long enough text"))
            .await
            .unwrap()
            .value
    );
    assert!(!check(len, json!("short")).await.unwrap().value);
    let cs = json!({"keywords": ["Lisbon"], "case_sensitive": true});
    assert!(!check(cs, json!("lisbon")).await.unwrap().value);
    let err = check(json!({}), json!("x")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("configure `keywords` or `min_length`"),
        "{err}"
    );
}

#[tokio::test]
async fn template_mapper_renders_input_and_prior_steps() {
    let reg = within(300, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, entry) = reg.resolve("template_mapper", Kind::InputMapper).unwrap();
    let prior = [
        result("plan", "planner", None, json!("the plan")),
        result("fan", "researcher", Some(0), json!({"facts": ["f1", "f2"]})),
    ];
    let c = with_entry(
        ctx(
            json!({"template": "[aspect {{vars.n}}] {{input}} / {{step:planner}} / {{step:researcher.facts.1}} / {{last}} / {{context.stage}}", "vars": {"n": 2}}),
        ),
        &entry,
    );
    let out = plugin
        .map_input(&rt, &c, &json!("topic"), &prior)
        .await
        .unwrap();
    assert_eq!(
        out.value,
        json!("[aspect 2] topic / the plan / f2 / {\"facts\":[\"f1\",\"f2\"]} / stage")
    );
    let c = with_entry(
        ctx(json!({"template": "{{input.city}} in {{stage:fan}}"})),
        &entry,
    );
    let out = plugin
        .map_input(&rt, &c, &json!({"city": "Lisbon"}), &prior)
        .await
        .unwrap();
    assert_eq!(out.value, json!("Lisbon in {\"facts\":[\"f1\",\"f2\"]}"));

    let c = with_entry(ctx(json!({"template": "{{step:nobody}}"})), &entry);
    let err = plugin
        .map_input(&rt, &c, &json!("x"), &prior)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("placeholder `{{step:nobody}}` has no value"),
        "{err}"
    );
    let c = with_entry(
        ctx(json!({"template": "a{{step:nobody}}b", "strict": false})),
        &entry,
    );
    let out = plugin
        .map_input(&rt, &c, &json!("x"), &prior)
        .await
        .unwrap();
    assert_eq!(out.value, json!("ab"));
}

#[tokio::test]
async fn calculator_tools_compute() {
    let reg = within(300, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, tools) = reg.resolve_tools("calculator").unwrap();
    assert_eq!(tools, ["add", "multiply", "evaluate"]);
    let defs = plugin.tools();
    assert_eq!(defs.len(), 3);
    assert_eq!(defs[0].parameters["required"], json!(["numbers"]));
    let invoke = |tool: &str, args: Value| {
        let c = with_entry(ctx(json!({})), tool);
        let plugin = plugin.clone();
        let rt = rt.clone();
        async move { plugin.invoke_tool(&rt, &c, &args).await }
    };
    assert_eq!(
        invoke("add", json!({"numbers": [1, 2, 3.5]}))
            .await
            .unwrap()
            .value,
        json!(6.5)
    );
    assert_eq!(
        invoke("multiply", json!({"numbers": [2, 3, 7]}))
            .await
            .unwrap()
            .value,
        json!(42)
    );
    assert_eq!(
        invoke("evaluate", json!({"expression": "2 * (3 + 4) ^ 2 - -1"}))
            .await
            .unwrap()
            .value,
        json!(99)
    );
    let err = invoke("evaluate", json!({"expression": "1 / (2 - 2)"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    let err = invoke("evaluate", json!({"expression": "(".repeat(1000)}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nested too deeply"), "{err}");
    let (_, one) = reg.resolve_tools("calculator#evaluate").unwrap();
    assert_eq!(one, ["evaluate"]);
}

#[tokio::test]
async fn lookup_facts_matches_the_peer_tool() {
    let reg = within(300, "load examples", examples()).await;
    let (plugin, tools) = reg.resolve_tools("lookup_facts").unwrap();
    assert_eq!(tools, ["lookup_facts"]);
    assert_eq!(
        plugin.tools()[0].parameters["required"],
        json!(["query", "limit"])
    );
    let c = with_entry(ctx(json!({})), "lookup_facts");
    let args = json!({"query": "arg:b935634aad675ba2.query:06c790e5", "limit": 698});
    let out = plugin.invoke_tool(&runtime(), &c, &args).await.unwrap();
    // The same text the peer's Python tool returns for these arguments.
    assert_eq!(out.value, json!("facts[3] about arg:b935634aad675ba2.que"));
}

#[tokio::test]
async fn pii_guardrail_trips_and_reports_findings() {
    let reg = within(300, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, entry) = reg.resolve("pii_guardrail", Kind::Guardrail).unwrap();
    let c = with_entry(ctx(json!({})), &entry);
    let v = plugin
        .check_guardrail(
            &rt,
            &c,
            Phase::Input,
            &json!("Write to ana.silva@example.pt or call +351 912 345 678."),
        )
        .await
        .unwrap()
        .value;
    assert!(v.tripwire);
    assert_eq!(
        v.message,
        "personal data in input: 1 e-mail address and 1 phone number"
    );
    assert_eq!(
        v.info,
        json!({"emails": ["ana.silva@example.pt"], "phones": ["+351 912 345 678"]})
    );

    let payload =
        json!({"tool": "lookup", "arguments": {"q": "weather"}, "output": "contact bob@corp.com"});
    let v = plugin
        .check_guardrail(&rt, &c, Phase::ToolOutput, &payload)
        .await
        .unwrap()
        .value;
    assert!(v.tripwire);
    assert!(
        v.message.starts_with("personal data in tool output"),
        "{}",
        v.message
    );

    let v = plugin
        .check_guardrail(
            &rt,
            &c,
            Phase::Output,
            &json!({"answer": "Lisbon has 545,000 people in 2021."}),
        )
        .await
        .unwrap()
        .value;
    assert!(!v.tripwire, "{v:?}");

    let c = with_entry(
        ctx(json!({"allow_domains": ["example.pt"], "detect": ["email"]})),
        &entry,
    );
    let v = plugin
        .check_guardrail(
            &rt,
            &c,
            Phase::Input,
            &json!("ana@example.pt, +351 912 345 678"),
        )
        .await
        .unwrap()
        .value;
    assert!(!v.tripwire, "{v:?}");
}

#[tokio::test]
async fn js_collect_reducer_collects_branches() {
    let reg = within(300, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, entry) = reg.resolve("js_collect", Kind::Reducer).unwrap();
    let mut skipped = result("fan", "b", Some(1), Value::Null);
    skipped.skipped = true;
    let mut failed = result("fan", "c", Some(2), Value::Null);
    failed.error = Some("model timed out".into());
    let outputs = [
        result("fan", "a", Some(0), json!({"x": 1})),
        skipped,
        failed,
        result("fan", "d", Some(3), json!("text")),
    ];
    let c = with_entry(ctx(json!({})), &entry);
    let out = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap();
    assert_eq!(
        out.value,
        json!({"results": {"a": {"x": 1}, "d": "text"}, "skipped": ["b"], "failed": {"c": "model timed out"}, "count": 2})
    );
    let c = with_entry(ctx(json!({"key": "stage"})), &entry);
    let out = plugin.reduce(&rt, &c, &outputs[..1], &[]).await.unwrap();
    assert_eq!(out.value["results"], json!({"fan/a": {"x": 1}}));
    let c = with_entry(ctx(json!({"key": "nope"})), &entry);
    let err = plugin.reduce(&rt, &c, &outputs, &[]).await.unwrap_err();
    assert!(
        matches!(&err.kind, CallErrorKind::Guest(m) if m.contains("config.key must be")),
        "{err}"
    );
}

#[tokio::test]
async fn py_regex_guard_matches_with_python_re() {
    let reg = within(300, "load examples", examples()).await;
    let rt = runtime();
    let (plugin, entry) = reg.resolve("py_regex_guard", Kind::Guard).unwrap();
    let check = |config: Value, input: Value| {
        let c = with_entry(ctx(config), &entry);
        let plugin = plugin.clone();
        let rt = rt.clone();
        async move { plugin.guard(&rt, &c, &input, &[]).await }
    };
    let p = json!({"pattern": r"\blis(bon|boa)\b", "flags": "i"});
    assert!(
        check(p.clone(), json!("A week in Lisbon"))
            .await
            .unwrap()
            .value
    );
    assert!(
        !check(p.clone(), json!("A week in Paris"))
            .await
            .unwrap()
            .value
    );
    let neg = json!({"pattern": "paris", "flags": "i", "negate": true});
    assert!(check(neg, json!("A week in Lisbon")).await.unwrap().value);
    let field = json!({"pattern": "^pt$", "field": "country.code"});
    assert!(
        check(field, json!({"country": {"code": "pt"}}))
            .await
            .unwrap()
            .value
    );
    let err = check(json!({}), json!("x")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("py_regex_guard: config.pattern is missing"),
        "{err}"
    );
    let err = check(json!({"pattern": "("}), json!("x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a valid Python regex"),
        "{err}"
    );
}
