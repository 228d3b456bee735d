//! JSON for `--output json` of the topic and configuration commands: values rendered to strings and assembled,
//! strings escaped as RFC 8259 requires.

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

/// A JSON array of rendered values.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    format!("[{}]", items.join(","))
}

/// A JSON array of numbers.
pub fn numbers(items: &[i32]) -> String {
    array(items.iter().map(i32::to_string))
}

/// A JSON object of `(key, rendered value)` pairs, in order.
pub fn object<K: AsRef<str>>(fields: impl IntoIterator<Item = (K, String)>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", string(k.as_ref())))
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_assembled() {
        assert_eq!(string("a\"b\\c\nd\t\u{1}é"), "\"a\\\"b\\\\c\\nd\\t\\u0001é\"");
        assert_eq!(opt_string(None), "null");
        assert_eq!(numbers(&[1, -2]), "[1,-2]");
        assert_eq!(
            object([("k", array([string("x"), "1".into()])), ("n", "null".into())]),
            "{\"k\":[\"x\",1],\"n\":null}"
        );
        assert_eq!(array(Vec::new()), "[]");
        assert_eq!(object(Vec::<(&str, String)>::new()), "{}");
    }
}
