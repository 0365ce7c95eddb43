//! Text from plugins and models, made harmless for a terminal.
//!
//! A model reply or a plugin's output may hold control characters: `ESC ]
//! 52 ;` writes the clipboard, `ESC [ 2 J` clears the screen, `ESC ] 8 ;`
//! spoofs a link, a `\r` rewrites the line before it. Everything the
//! readable sinks and the command line print is escaped: C0 controls other
//! than `\n` and `\t` become `\xNN` (`\r` becomes `\r`), DEL `\x7f`, and C1
//! controls (U+0080 to U+009F) `\u{NN}`. The text stays readable and
//! nothing reaches the terminal as a command. JSON output (`jsonl`) is data
//! and is escaped by JSON itself.

use std::borrow::Cow;
use std::io::{self, Write};

/// `text` with its control characters escaped (see the module docs);
/// borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let code = u32::from(c);
    let _ = match c {
        '\r' => write!(out, "\\r"),
        _ if code < 0x80 => write!(out, "\\x{code:02x}"),
        _ => write!(out, "\\u{{{code:x}}}"),
    };
}

/// A writer that escapes control characters in what passes through it, as
/// [`escape_controls`] does, for sinks that format straight into a stream.
/// Bytes that are not UTF-8 pass unchanged, except C0 controls and DEL.
pub struct Escaped<W: Write> {
    inner: W,
    /// A `0xC2` byte held back: with the next byte it may be a C1 control.
    pending_c2: bool,
}

impl<W: Write> Escaped<W> {
    pub fn new(inner: W) -> Self {
        Escaped {
            inner,
            pending_c2: false,
        }
    }
}

impl<W: Write> Write for Escaped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + 8);
        for &b in buf {
            if std::mem::take(&mut self.pending_c2) {
                // U+0080..U+009F are `C2 80`..`C2 9F` in UTF-8.
                if (0x80..=0x9f).contains(&b) {
                    let _ = write!(out, "\\u{{{b:x}}}");
                    continue;
                }
                out.push(0xc2);
            }
            match b {
                b'\n' | b'\t' => out.push(b),
                b'\r' => out.extend_from_slice(b"\\r"),
                0x00..=0x1f | 0x7f => {
                    let _ = write!(out, "\\x{b:02x}");
                }
                0xc2 => self.pending_c2 = true,
                _ => out.push(b),
            }
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.pending_c2) {
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Escaped<W> {
    /// A held-back byte (only ever the last of text that is not UTF-8) is
    /// not lost.
    fn drop(&mut self) {
        if self.pending_c2 {
            let _ = self.inner.write_all(&[0xc2]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "a\x1b]52;c;ZXZpbA==\x07b\x1b[2J\r\u{9b}31m\x7f\tok\n";
    const SAFE: &str = "a\\x1b]52;c;ZXZpbA==\\x07b\\x1b[2J\\r\\u{9b}31m\\x7f\tok\n";

    #[test]
    fn controls_are_escaped_newlines_and_tabs_kept() {
        assert_eq!(escape_controls(HOSTILE), SAFE);
        assert!(matches!(escape_controls("plain · ü ✓\n"), Cow::Borrowed(_)));
        // Escaping twice changes nothing more.
        assert_eq!(escape_controls(SAFE), SAFE);
    }

    #[test]
    fn the_writer_escapes_the_same_even_split_mid_character() {
        let bytes = HOSTILE.as_bytes();
        for split in 0..bytes.len() {
            let mut w = Escaped::new(Vec::new());
            w.write_all(&bytes[..split]).unwrap();
            w.write_all(&bytes[split..]).unwrap();
            w.flush().unwrap();
            assert_eq!(
                String::from_utf8(w.inner.clone()).unwrap(),
                SAFE,
                "split at {split}"
            );
        }
        let mut w = Escaped::new(Vec::new());
        w.write_all("ü é Â".as_bytes()).unwrap();
        w.flush().unwrap();
        assert_eq!(String::from_utf8(w.inner.clone()).unwrap(), "ü é Â");
    }
}
