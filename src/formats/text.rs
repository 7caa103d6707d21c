//! Text within limits. Providers count characters; we count UTF-16 code
//! units, which are never fewer than characters (code points), so text cut
//! to fit by this count fits whichever way a provider counts.

use crate::catalog::Span;

/// The ellipsis that marks cut text (one unit).
pub const ELLIPSIS: char = '…';

/// Length in UTF-16 code units.
pub fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `s` if it fits in `max` units, else its start and an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if units(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + c.len_utf16() > max - 1 {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    let mut out = out.trim_end().to_string();
    out.push(ELLIPSIS);
    out
}

/// How a format writes text and links in its markup.
pub struct Markup {
    /// Escapes one character of plain text.
    pub escape: fn(char, &mut String),
    /// Writes a link (text already plain, not escaped).
    pub link: fn(&str, &str) -> String,
}

impl Markup {
    pub fn escaped(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            (self.escape)(c, &mut out);
        }
        out
    }

    /// Plain text escaped and cut to `max` units without splitting an escape.
    pub fn escaped_within(&self, text: &str, max: usize) -> String {
        self.spans_within(&[Span::text(text)], max)
    }

    /// The spans written in this markup within `max` units. A link that does
    /// not fit whole is written as its text; nothing is ever cut inside an
    /// escape or a link's markup, so the result is always valid markup.
    pub fn spans_within(&self, spans: &[Span], max: usize) -> String {
        let write = |span: &Span| match span {
            Span::Text { text } => self.escaped(text),
            Span::Link { text, url } => (self.link)(text, url),
        };
        let whole: String = spans.iter().map(write).collect();
        if units(&whole) <= max {
            return whole;
        }
        if max == 0 {
            return String::new();
        }
        let budget = max - 1;
        let mut out = String::new();
        let mut used = 0;
        'spans: for span in spans {
            let written = write(span);
            if used + units(&written) <= budget {
                used += units(&written);
                out.push_str(&written);
                continue;
            }
            let mut piece = String::new();
            for c in span.visible().chars() {
                piece.clear();
                (self.escape)(c, &mut piece);
                if used + units(&piece) > budget {
                    break 'spans;
                }
                used += units(&piece);
                out.push_str(&piece);
            }
            break;
        }
        let mut out = out.trim_end().to_string();
        out.push(ELLIPSIS);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amp(c: char, out: &mut String) {
        match c {
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }

    fn angle(text: &str, url: &str) -> String {
        format!("<{url}|{text}>")
    }

    const M: Markup = Markup {
        escape: amp,
        link: angle,
    };

    #[test]
    fn truncation_counts_utf16_units_and_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(units("😀"), 2);
        assert_eq!(truncate("😀😀😀", 4), "😀…");
        assert!(units(&truncate(&"é".repeat(5000), 3000)) <= 3000);
    }

    #[test]
    fn escapes_and_links_are_never_split() {
        assert_eq!(M.escaped_within("a&b", 5), "a…");
        assert_eq!(M.escaped_within("a&b", 7), "a&amp;b");
        let spans = [
            Span::text("see "),
            Span::Link {
                text: "report".into(),
                url: "https://x.example/very/long".into(),
            },
            Span::text(" now"),
        ];
        assert_eq!(
            M.spans_within(&spans, 100),
            "see <https://x.example/very/long|report> now"
        );
        // Too short for the link: its text stands in.
        assert_eq!(M.spans_within(&spans, 12), "see report…");
        for max in 0..60 {
            assert!(units(&M.spans_within(&spans, max)) <= max);
        }
    }
}
