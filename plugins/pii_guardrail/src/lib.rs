//! `pii_guardrail`: trips when the checked text contains e-mail addresses or
//! phone numbers, and reports what it found.
//!
//! Every string (and number) inside the payload is scanned (for tool phases: the
//! arguments and output too). Config (optional):
//! - `detect`: which detectors run, default `["email", "phone"]`
//! - `allow_domains`: e-mail domains that are not reported
//! - `min_phone_digits`: digits a phone number needs, default 7
//!
//! The verdict's `info` is `{"emails": [...], "phones": [...]}`.

use guest_sdk::{CallContext, Entry, Phase, Plugin, Value, Verdict, export_plugin, json, log};

struct PiiGuardrail;

impl Plugin for PiiGuardrail {
    fn entries() -> Vec<Entry> {
        vec![Entry::guardrail(
            "pii_guardrail",
            "trips on e-mail addresses and phone numbers and reports what it found",
        )]
    }

    fn guardrail(ctx: &CallContext, phase: Phase, payload: &Value) -> Result<Verdict, String> {
        let detect: Vec<String> = match ctx.config.get("detect") {
            None => vec!["email".into(), "phone".into()],
            Some(v) => v
                .as_array()
                .ok_or("pii_guardrail: config.detect must be an array")?
                .iter()
                .map(|d| match d.as_str() {
                    Some(s @ ("email" | "phone")) => Ok(s.to_string()),
                    _ => Err(format!(
                        "pii_guardrail: unknown detector {d} (use \"email\" or \"phone\")"
                    )),
                })
                .collect::<Result<_, _>>()?,
        };
        let allow: Vec<String> = ctx
            .config
            .get("allow_domains")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        let min_digits = ctx
            .config
            .get("min_phone_digits")
            .and_then(Value::as_u64)
            .unwrap_or(7) as usize;

        let mut texts = Vec::new();
        collect_strings(payload, &mut texts);
        let mut emails = Vec::new();
        let mut phones = Vec::new();
        for text in &texts {
            if detect.iter().any(|d| d == "email") {
                for e in find_emails(text) {
                    let domain = e.rsplit('@').next().unwrap_or_default().to_lowercase();
                    if !allow.contains(&domain) && !emails.contains(&e) {
                        emails.push(e);
                    }
                }
            }
            if detect.iter().any(|d| d == "phone") {
                for p in find_phones(text, min_digits) {
                    if !phones.contains(&p) {
                        phones.push(p);
                    }
                }
            }
        }
        if emails.is_empty() && phones.is_empty() {
            return Ok(Verdict::pass());
        }
        let mut found = Vec::new();
        if !emails.is_empty() {
            found.push(plural(emails.len(), "e-mail address", "e-mail addresses"));
        }
        if !phones.is_empty() {
            found.push(plural(phones.len(), "phone number", "phone numbers"));
        }
        let phase = match phase {
            Phase::Input => "input",
            Phase::Output => "output",
            Phase::ToolInput => "tool input",
            Phase::ToolOutput => "tool output",
        };
        let message = format!("personal data in {phase}: {}", found.join(" and "));
        log::info(&message);
        Ok(Verdict::trip(
            message,
            json!({"emails": emails, "phones": phones}),
        ))
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Strings, and numbers as their text: a phone number often arrives as a
/// JSON number.
fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

fn is_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// `local@domain.tld` with a dotted domain and an alphabetic TLD.
fn find_emails(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if c != '@' {
            continue;
        }
        let mut start = i;
        while start > 0 && is_local(chars[start - 1]) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < chars.len() && is_domain(chars[end]) {
            end += 1;
        }
        let local: String = chars[start..i].iter().collect();
        let domain: String = chars[i + 1..end]
            .iter()
            .collect::<String>()
            .trim_end_matches('.')
            .to_string();
        let tld = domain.rsplit('.').next().unwrap_or_default();
        let local = local.trim_start_matches('.');
        if !local.is_empty()
            && domain.contains('.')
            && tld.len() >= 2
            && tld.chars().all(|c| c.is_ascii_alphabetic())
        {
            found.push(format!("{local}@{domain}"));
        }
    }
    found
}

/// Runs of digits joined by spaces, dashes, dots or parentheses, optionally
/// starting with `+`, with at least `min_digits` (and at most 15) digits.
fn find_phones(text: &str, min_digits: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || ((chars[i] == '+' || chars[i] == '(')
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        let after_word = i > 0
            && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '@' || chars[i - 1] == '.');
        if !starts || after_word {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut digits = 0;
        let mut last_digit = i;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits += 1;
                last_digit = j;
            } else if !(c == ' '
                || c == '-'
                || c == '.'
                || c == '('
                || c == ')'
                || (c == '+' && j == i))
            {
                break;
            }
            j += 1;
        }
        let ends_in_word = chars
            .get(last_digit + 1)
            .is_some_and(|c| c.is_ascii_alphabetic());
        if digits >= min_digits && digits <= 15 && !ends_in_word {
            found.push(
                chars[i..=last_digit]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string(),
            );
        }
        i = j.max(i + 1);
    }
    found
}

export_plugin!(PiiGuardrail);
