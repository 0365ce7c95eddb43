//! The terminal side of the live view: its size, and the ANSI sequences
//! that move back over the live area and clear it.

use std::fmt::Write as _;

/// Moves the cursor up over `lines` lines (none: stays), to the start of the
/// line, and clears from there to the end of the screen.
pub(super) fn rewind(buf: &mut String, lines: usize) {
    if lines > 0 {
        let _ = write!(buf, "\x1b[{lines}A");
    }
    buf.push_str("\r\x1b[J");
}

/// Columns and rows of the terminal on stderr; `COLUMNS` and `LINES`, else
/// 80 × 24, when unknown.
pub(super) fn size() -> (usize, usize) {
    #[cfg(unix)]
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stderr())
        && size.ws_col > 0
        && size.ws_row > 0
    {
        return (usize::from(size.ws_col), usize::from(size.ws_row));
    }
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .filter(|&c: &usize| c > 0)
            .unwrap_or(default)
    };
    (var("COLUMNS", 80), var("LINES", 24))
}
