//! Text from outside, made safe for a terminal or a log.
//!
//! Error codes, messages and request ids from a target, the path and headers of a proxy's
//! client, ids from a world, journal, repro or shard file: any of them may carry bytes a terminal
//! obeys (ESC sequences that clear the screen, set the window title, rewrite what was printed
//! before; NUL; C1 controls such as the one-byte CSI) or that make text read otherwise than it is
//! stored (Unicode bidirectional overrides). Every such character is shown escaped, visibly:
//! ESC as `\x1b`, U+202E as `\u{202e}`, a newline inside one value as `\n`.
//!
//! [`Shown`] is for one value (nothing of it may start a new line); [`escape_text`] for text the
//! harness composed over several lines, where only `\n` stays as it is. Every line the command
//! line prints goes through [`escape_text`] on its way out, so a value the harness forgot to wrap
//! still reaches the terminal escaped. It lives with the input bounds, below every stage, so
//! that any stage composing text for people can use it.

use std::borrow::Cow;
use std::fmt;

/// One value from outside, displayed with every control, bidi and line-breaking character
/// escaped: it prints on one line and as stored.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            f.write_str(&rest[..i])?;
            write_escaped(f, c)?;
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// One value with every control, bidi and line-breaking character escaped (as [`Shown`]).
pub fn escape(s: &str) -> Cow<'_, str> {
    match s.chars().any(needs_escape) {
        true => Cow::Owned(Shown(s).to_string()),
        false => Cow::Borrowed(s),
    }
}

/// Text of several lines: as [`escape`], but a newline stays a newline.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&escape(line));
    }
    Cow::Owned(out)
}

/// Whether a character is shown escaped: the C0 and C1 controls and DEL (a terminal acts on
/// them), the bidirectional formatting characters (they reorder what is shown: a "Trojan
/// source"), the line and paragraph separators, the byte order mark and the noncharacters
/// U+FFFE and U+FFFF (invisible, or invalid in XML 1.0).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{feff}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

/// Writes one escaped character: `\n`, `\r`, `\t`, `\x1b` for the rest of ASCII, `\u{202e}`
/// beyond.
pub fn write_escaped(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if c.is_ascii() => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_terminal_control_is_shown_escaped_and_the_rest_left_alone() {
        let hostile =
            "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{0}a\u{9b}31m\u{202e}txt.exe\u{2066}\r\n\t\u{7f}";
        let shown = Shown(hostile).to_string();
        assert_eq!(
            shown,
            "\\x1b]0;pwned\\x07\\x1b[2J\\x00a\\u{9b}31m\\u{202e}txt.exe\\u{2066}\\r\\n\\t\\x7f"
        );
        assert!(!shown.chars().any(needs_escape), "{shown}");
        assert_eq!(escape(hostile), shown);
        for plain in ["InvalidParameter.Malformed", "ins-0001 «例» é ü ✓", ""] {
            assert!(matches!(escape(plain), Cow::Borrowed(_)), "{plain}");
            assert_eq!(Shown(plain).to_string(), plain);
        }
    }

    #[test]
    fn multi_line_text_keeps_its_newlines_only() {
        assert_eq!(escape_text("a\nb"), "a\nb");
        assert_eq!(
            escape_text("FAIL x\n  actual: \u{1b}[31mred\r\n"),
            "FAIL x\n  actual: \\x1b[31mred\\r\n"
        );
    }
}
