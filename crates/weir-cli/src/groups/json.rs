//! A minimal JSON writer for `--output json`: values are rendered to strings and assembled; strings are
//! escaped as RFC 8259 requires.

use std::fmt::Write as _;

/// A JSON string.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON string, or `null`.
pub fn opt_string(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), string)
}

/// A JSON number, or `null`.
pub fn opt_num<N: std::fmt::Display>(n: Option<N>) -> String {
    n.map_or_else(|| "null".to_string(), |n| n.to_string())
}

/// A JSON array of rendered values.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    format!("[{}]", items.join(","))
}

/// A JSON object of `(key, rendered value)` pairs, in order.
pub fn object(fields: &[(&str, String)]) -> String {
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", string(k))).collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_assembled() {
        assert_eq!(string("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        assert_eq!(opt_string(None), "null");
        assert_eq!(opt_num(Some(-3)), "-3");
        assert_eq!(opt_num::<i64>(None), "null");
        assert_eq!(
            object(&[("k", array([string("x"), "1".into()])), ("n", "null".into())]),
            "{\"k\":[\"x\",1],\"n\":null}"
        );
        assert_eq!(array(Vec::new()), "[]");
    }
}
