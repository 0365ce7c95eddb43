//! An incremental server-sent-events decoder (the subset of the WHATWG
//! event-stream format model servers use: `event`, `data`, comments; `id`
//! and `retry` are ignored). Bytes go in as they arrive, whole events come
//! out. A line or an event over its cap is an error as soon as the cap is
//! passed, so a server cannot make the decoder buffer without bound.

use super::error::Failure;
use super::limits::ReplyLimits;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field (empty when absent).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug)]
pub(crate) struct SseDecoder {
    limits: ReplyLimits,
    buf: Vec<u8>,
    /// The previous line ended with `\r`: a `\n` right after belongs to it.
    skip_lf: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// A decoder that refuses lines over `limits.max_line_bytes` and events
    /// over `limits.max_event_bytes`.
    pub(crate) fn new(limits: ReplyLimits) -> Self {
        SseDecoder {
            limits,
            buf: Vec::new(),
            skip_lf: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
        }
    }

    /// Feeds the next bytes; complete events are appended to `out`. Fails on
    /// a line that is not UTF-8, a line over the line cap (even before it
    /// ends) and an event over the event cap.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), Failure> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut result = Ok(());
        loop {
            if self.skip_lf {
                if start >= self.buf.len() {
                    break;
                }
                if self.buf[start] == b'\n' {
                    start += 1;
                }
                self.skip_lf = false;
            }
            let Some(rel) = self.buf[start..]
                .iter()
                .position(|b| *b == b'\n' || *b == b'\r')
            else {
                if self.buf.len() - start > self.limits.max_line_bytes {
                    result = Err(Failure::Limit(self.limits.line()));
                    start = self.buf.len();
                }
                break;
            };
            let end = start + rel;
            self.skip_lf = self.buf[end] == b'\r';
            if rel > self.limits.max_line_bytes {
                result = Err(Failure::Limit(self.limits.line()));
                start = end + 1;
                break;
            }
            let line = match std::str::from_utf8(&self.buf[start..end]) {
                Ok(line) => line.to_owned(),
                Err(e) => {
                    result = Err(Failure::Malformed(format!("stream line is not UTF-8: {e}")));
                    start = end + 1;
                    break;
                }
            };
            start = end + 1;
            self.line(&line, out);
            if self.event.len() + self.data.len() > self.limits.max_event_bytes {
                result = Err(Failure::Limit(self.limits.event()));
                break;
            }
        }
        self.buf.drain(..start);
        result
    }

    /// The stream ended: a last event not followed by a blank line is still
    /// dispatched if all its lines are complete; an event with a partial
    /// line is dropped. Returns whether something partial was dropped.
    pub(crate) fn finish(&mut self, out: &mut Vec<SseEvent>) -> bool {
        let partial = !self.buf.is_empty();
        self.buf.clear();
        if partial {
            self.event.clear();
            self.data.clear();
            self.has_data = false;
        } else {
            self.dispatch(out);
        }
        partial
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => {
                self.event.clear();
                self.event.push_str(value);
            }
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: std::mem::take(&mut self.event),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> (Vec<SseEvent>, bool) {
        let mut decoder = SseDecoder::new(ReplyLimits::default());
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut out).unwrap();
        }
        let partial = decoder.finish(&mut out);
        (out, partial)
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_across_chunk_boundaries() {
        let (out, partial) = decode(&[
            b"event: a\nda",
            b"ta: {\"x\":1}\n",
            b"\n: comment\ndata: 1\ndata:2\n\ndata: [DONE]\n\n",
        ]);
        assert!(!partial);
        assert_eq!(
            out,
            vec![ev("a", "{\"x\":1}"), ev("", "1\n2"), ev("", "[DONE]")]
        );
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let (out, _) = decode(&[b"data: a\r", b"\n\r\ndata: b\r\rdata: c\r\n\r\n"]);
        assert_eq!(out, vec![ev("", "a"), ev("", "b"), ev("", "c")]);
    }

    #[test]
    fn eof_without_blank_line_dispatches_complete_lines_only() {
        let (out, partial) = decode(&[b"data: a\n"]);
        assert_eq!(out, vec![ev("", "a")]);
        assert!(!partial);
        let (out, partial) = decode(&[b"data: a\n\ndata: b\ndata: {\"tr"]);
        assert_eq!(out, vec![ev("", "a")]);
        assert!(partial);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let (out, _) = decode(&[b"event: ping\n\nretry: 5\nid: 3\n\n"]);
        assert!(out.is_empty());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut decoder = SseDecoder::new(ReplyLimits::default());
        let mut out = Vec::new();
        assert!(decoder.feed(b"data: \xff\xfe\n\n", &mut out).is_err());
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    fn small() -> ReplyLimits {
        ReplyLimits {
            max_line_bytes: 1024,
            max_event_bytes: 4096,
            ..ReplyLimits::default()
        }
    }

    fn is_limit(result: Result<(), Failure>, key: &str) -> bool {
        matches!(result, Err(Failure::Limit(e)) if e.key == key)
    }

    #[test]
    fn an_unfinished_line_over_the_cap_fails_before_it_ends() {
        let mut decoder = SseDecoder::new(small());
        let mut out = Vec::new();
        assert!(decoder.feed(b"data: ", &mut out).is_ok());
        let mut result = Ok(());
        for _ in 0..100 {
            result = decoder.feed(&[b'a'; 100], &mut out);
            if result.is_err() {
                break;
            }
            // Never holds more than the cap and one chunk.
            assert!(decoder.buf.len() <= 1024 + 100);
        }
        assert!(is_limit(result, "max_line_bytes"));
        assert!(out.is_empty());
    }

    #[test]
    fn a_whole_line_over_the_cap_fails() {
        let mut decoder = SseDecoder::new(small());
        let mut line = b"data: ".to_vec();
        line.extend([b'a'; 2000]);
        line.push(b'\n');
        assert!(is_limit(
            decoder.feed(&line, &mut Vec::new()),
            "max_line_bytes"
        ));
    }

    #[test]
    fn many_data_lines_over_the_event_cap_fail() {
        let mut decoder = SseDecoder::new(small());
        let line = format!("data: {}\n", "a".repeat(500));
        let mut result = Ok(());
        for _ in 0..20 {
            result = decoder.feed(line.as_bytes(), &mut Vec::new());
            if result.is_err() {
                break;
            }
        }
        assert!(is_limit(result, "max_event_bytes"));
    }

    #[test]
    fn lines_and_events_under_the_caps_pass() {
        let mut decoder = SseDecoder::new(small());
        let mut out = Vec::new();
        let event = format!("data: {}\ndata: {}\n\n", "a".repeat(1000), "b".repeat(1000));
        for _ in 0..10 {
            decoder.feed(event.as_bytes(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 10);
    }
}
