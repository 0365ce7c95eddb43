//! Reply styles: opt-in deviations from OpenAI's exact bodies that real
//! OpenAI-compatible servers (vLLM, Ollama, llama.cpp, LM Studio, LiteLLM,
//! gateways) are seen to produce. See the crate README for the table.

use std::fmt;
use std::str::FromStr;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// Request header selecting styles for one request (`a,b`; empty: none).
pub const STYLE_HEADER: &str = "x-mock-style";

/// One reply style. Styles combine; a style that does not apply to an API
/// (e.g. `data_only` on Chat) is ignored there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// No usage at all (both APIs; Chat streams get no usage chunk).
    NoUsage,
    /// Usage with only the three counts, no `*_details`.
    BareUsage,
    /// Every field the official SDKs treat as optional is omitted.
    Minimal,
    /// Unknown fields at every level, an unknown output item / stream event.
    Extra,
    /// Responses SSE without `event:` lines (type only in the data).
    DataOnly,
    /// A Responses stream that ends with `data: [DONE]`.
    ResponsesDone,
    /// A Chat stream that ends without `data: [DONE]`.
    NoDone,
    /// Chat: the usage chunk has a one-element `choices` with an empty delta.
    UsageInChoice,
    /// Chat: each tool call arrives whole in one chunk.
    WholeToolCall,
    /// Chat and Responses: tool-call arguments in many tiny deltas.
    SplitToolArgs,
    /// Chat: no role-only first chunk; `role` comes with the first content.
    RoleInContent,
    /// Chat: `finish_reason` on the last content / tool-call chunk.
    FinishOnContent,
    /// SSE comment lines (`: keep-alive`) and blank lines between events.
    Keepalive,
    /// CRLF line endings in SSE streams.
    Crlf,
}

impl Style {
    /// Every style, in documentation order.
    pub const ALL: [Style; 14] = [
        Style::NoUsage,
        Style::BareUsage,
        Style::Minimal,
        Style::Extra,
        Style::DataOnly,
        Style::ResponsesDone,
        Style::NoDone,
        Style::UsageInChoice,
        Style::WholeToolCall,
        Style::SplitToolArgs,
        Style::RoleInContent,
        Style::FinishOnContent,
        Style::Keepalive,
        Style::Crlf,
    ];

    /// The style's name in configs and the `x-mock-style` header.
    pub fn name(self) -> &'static str {
        match self {
            Style::NoUsage => "no_usage",
            Style::BareUsage => "bare_usage",
            Style::Minimal => "minimal",
            Style::Extra => "extra",
            Style::DataOnly => "data_only",
            Style::ResponsesDone => "responses_done",
            Style::NoDone => "no_done",
            Style::UsageInChoice => "usage_in_choice",
            Style::WholeToolCall => "whole_tool_call",
            Style::SplitToolArgs => "split_tool_args",
            Style::RoleInContent => "role_in_content",
            Style::FinishOnContent => "finish_on_content",
            Style::Keepalive => "keepalive",
            Style::Crlf => "crlf",
        }
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown style name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStyle(pub String);

impl fmt::Display for UnknownStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Style::ALL.iter().map(|s| s.name()).collect();
        write!(
            f,
            "unknown mock style '{}' (known: {})",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownStyle {}

impl FromStr for Style {
    type Err = UnknownStyle;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Style::ALL
            .into_iter()
            .find(|style| style.name() == s)
            .ok_or_else(|| UnknownStyle(s.to_owned()))
    }
}

/// Checks a set of styles for combinations that contradict each other.
pub(crate) fn check(styles: &[Style]) -> Result<(), String> {
    if styles.contains(&Style::WholeToolCall) && styles.contains(&Style::SplitToolArgs) {
        return Err("styles whole_tool_call and split_tool_args exclude each other".into());
    }
    Ok(())
}

/// The styles a request asks for with the `x-mock-style` header: `None`
/// without the header, `Some(empty)` for an empty value (no styles, overriding
/// the rule's and the global ones).
pub(crate) fn from_header(headers: &HeaderMap) -> Result<Option<Styles>, String> {
    let Some(value) = headers.get(STYLE_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| format!("{STYLE_HEADER} is not ASCII"))?;
    let mut styles = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        styles.push(name.parse::<Style>().map_err(|e| e.to_string())?);
    }
    check(&styles)?;
    Ok(Some(Styles::new(&styles)))
}

/// A set of styles (a bit set, cheap to copy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Styles(u32);

impl Styles {
    pub(crate) fn new(styles: &[Style]) -> Self {
        Self(styles.iter().fold(0, |bits, s| bits | (1 << *s as u32)))
    }

    pub(crate) fn has(self, style: Style) -> bool {
        self.0 & (1 << style as u32) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for style in Style::ALL {
            let json = serde_json::to_string(&style).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", style.name()));
            assert_eq!(style.name().parse::<Style>(), Ok(style));
        }
        assert!("nope".parse::<Style>().is_err());
        assert!(serde_json::from_str::<Style>("\"nope\"").is_err());
    }

    #[test]
    fn header_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_header(&headers), Ok(None));
        headers.insert(STYLE_HEADER, HeaderValue::from_static("crlf, no_done"));
        let set = from_header(&headers).ok().flatten().unwrap_or_default();
        assert!(set.has(Style::Crlf) && set.has(Style::NoDone) && !set.has(Style::Extra));
        headers.insert(STYLE_HEADER, HeaderValue::from_static(""));
        assert_eq!(from_header(&headers), Ok(Some(Styles::default())));
        headers.insert(STYLE_HEADER, HeaderValue::from_static("crlf,bogus"));
        assert!(from_header(&headers).is_err());
        headers.insert(
            STYLE_HEADER,
            HeaderValue::from_static("whole_tool_call,split_tool_args"),
        );
        assert!(from_header(&headers).is_err());
    }
}
