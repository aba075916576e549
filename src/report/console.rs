//! Reports written as JSON with nothing a terminal acts on left raw, and the escaping of text
//! from outside for the console ([`crate::input::text`], re-exported here).

pub use crate::input::text::{escape, escape_text, needs_escape, write_escaped, Shown};

/// Pretty JSON in which no character a terminal acts on appears raw: serde_json already writes
/// C0 controls as `\u001b`; DEL, the C1 controls and the bidi characters are written as `\u`
/// escapes too (the same string to every JSON reader, and safe to `cat`).
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping(Default::default()));
    value.serialize(&mut ser)?;
    // serde_json writes only valid UTF-8.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// serde_json's pretty formatter, with [`needs_escape`] characters written as `\u` escapes.
struct Escaping<'a>(serde_json::ser::PrettyFormatter<'a>);

impl serde_json::ser::Formatter for Escaping<'_> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            writer.write_all(&rest.as_bytes()[..i])?;
            // Every such character is in the Basic Multilingual Plane: one `\u` escape.
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_no_raw_terminal_control_and_reads_back_the_same() {
        let hostile = "\u{1b}[2J\u{7f}\u{9b}\u{202e}\u{0}é✓";
        let value = serde_json::json!({ "code": hostile, "list": [hostile, 1] });
        let text = to_json_pretty(&value).unwrap();
        assert!(
            !text.chars().any(|c| c != '\n' && needs_escape(c)),
            "{text}"
        );
        assert!(text.contains("\\u202e") && text.contains("é✓"), "{text}");
        assert_eq!(
            text.replace(char::is_whitespace, ""),
            serde_json::to_string(&value)
                .unwrap()
                .replace(char::is_whitespace, "")
                .replace('\u{7f}', "\\u007f")
                .replace('\u{9b}', "\\u009b")
                .replace('\u{202e}', "\\u202e"),
            "pretty, as serde_json writes it"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
