//! Integers wider than 64 bits in a request body. serde_json reads them as
//! floats (`18446744073709551616` becomes `1.8446744073709552e19`), which
//! would change a payload silently: such a body is refused instead, with a
//! 400 naming the number's place.

/// The JSON pointer of the first integer in `json` (valid JSON) that fits
/// neither `i64` nor `u64`, if any.
pub fn wide_integer(json: &[u8]) -> Option<String> {
    // Such an integer has at least 19 digits in a row: bodies without a run
    // that long (nearly all) cost one pass over their bytes.
    if !has_digit_run(json, 19) {
        return None;
    }
    let mut path: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let end = string_end(json, i);
                if next_is_colon(json, end)
                    && let Some(Segment::Key(key)) = path.last_mut()
                {
                    *key = serde_json::from_slice(&json[i..end]).unwrap_or_default();
                }
                i = end;
            }
            b'{' => {
                path.push(Segment::Key(String::new()));
                i += 1;
            }
            b'[' => {
                path.push(Segment::Index(0));
                i += 1;
            }
            b'}' | b']' => {
                path.pop();
                i += 1;
            }
            b',' => {
                if let Some(Segment::Index(n)) = path.last_mut() {
                    *n += 1;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len()
                    && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                if is_wide_integer(&json[start..i]) {
                    return Some(pointer(&path));
                }
            }
            _ => i += 1,
        }
    }
    None
}

enum Segment {
    Key(String),
    Index(usize),
}

fn has_digit_run(bytes: &[u8], min: usize) -> bool {
    let mut run = 0;
    for b in bytes {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run >= min {
            return true;
        }
    }
    false
}

/// The index just past the string starting at `start` (its opening quote).
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

fn next_is_colon(json: &[u8], from: usize) -> bool {
    json[from.min(json.len())..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b':')
}

fn is_wide_integer(token: &[u8]) -> bool {
    if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return false;
    }
    let text = std::str::from_utf8(token).unwrap_or_default();
    text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
}

fn pointer(path: &[Segment]) -> String {
    let mut pointer = String::new();
    for segment in path {
        pointer.push('/');
        match segment {
            Segment::Key(key) => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Index(n) => pointer.push_str(&n.to_string()),
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::wide_integer;

    #[test]
    fn integers_beyond_64_bits_are_found_with_their_place() {
        let wide = |json: &str| wide_integer(json.as_bytes());
        assert_eq!(
            wide(r#"{"payload": {"n": 18446744073709551616}}"#).as_deref(),
            Some("/payload/n")
        );
        assert_eq!(
            wide(r#"{"events": [{"a": 1}, {"payload": {"x/y": [0, -9223372036854775809]}}]}"#)
                .as_deref(),
            Some("/events/1/payload/x~1y/1")
        );
        // In range, a float, or digits in a string: kept.
        assert_eq!(
            wide(r#"{"a": 18446744073709551615, "b": -9223372036854775808}"#),
            None
        );
        assert_eq!(wide(r#"{"a": 18446744073709551616.0, "b": 1e400}"#), None);
        assert_eq!(
            wide(r#"{"id": "184467440737095516160000", "q": "a\"b"}"#),
            None
        );
        assert_eq!(
            wide(r#"{"k\"ey": 99999999999999999999}"#).as_deref(),
            Some("/k\"ey")
        );
    }
}
