//! Small helpers every layer shares: text clipping for messages and events,
//! error chains, plurals, durations and the wall clock. A leaf: it imports
//! nothing from the crate.

use serde_json::Value;
use std::time::Duration;

/// The start of `text`, at most `max` bytes (cut on a char boundary), with
/// `…` appended when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    format!("{}…", &text[..text.floor_char_boundary(max)])
}

/// [`clip`] of an owned string, without copying when it fits.
pub fn clip_owned(mut text: String, max: usize) -> String {
    if text.len() > max {
        text.truncate(text.floor_char_boundary(max));
        text.push('…');
    }
    text
}

/// The start of `text`, at most `max` characters, with `…` when cut (for
/// what a person reads, where a character is the unit).
pub fn clip_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// The first line of `text`, at most `max` characters (then `…`).
pub fn first_line(text: &str, max: usize) -> String {
    clip_chars(text.lines().next().unwrap_or(""), max)
}

/// An error and its sources, `: `-joined; a source whose text the message
/// already contains is not repeated (reqwest's own message hides whether
/// the connection was refused or timed out, its source says it).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// `"s"` unless `n` is one.
pub fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `340 ms`, `1.2 s`, `2m 05s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// Now, in unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `d` in whole milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `{}`: the default of a JSON config or schema.
pub fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_a_char_boundary() {
        assert_eq!(clip("héllo", 2), "h…");
        assert_eq!(clip("héllo", 3), "hé…");
        assert_eq!(clip("hello", 5), "hello");
        assert_eq!(clip_owned("héllo".into(), 2), "h…");
    }

    #[test]
    fn clip_chars_counts_characters() {
        assert_eq!(clip_chars("héllo", 2), "hé…");
        assert_eq!(clip_chars("héllo", 5), "héllo");
        assert_eq!(first_line("one\ntwo", 10), "one");
        assert_eq!(first_line("", 10), "");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_millis(340)), "340 ms");
        assert_eq!(human_duration(Duration::from_millis(1_240)), "1.2 s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m 05s");
    }

    #[test]
    fn error_chains_skip_repeated_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: inner")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        assert_eq!(error_chain(&Outer(Inner)), "outer: inner");
    }
}
