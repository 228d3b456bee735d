//! kcat's `-f` output format: `%t %p %o %k %s %T %h %K %S %%` and the escapes `\n \t \r \\`.

use std::io::{self, Write};

use bytes::Bytes;

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
    KeyLen,
    ValueLen,
}

/// What a format renders: a borrowed view of one consumed record.
pub struct Message<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(String, Option<Bytes>)],
}

impl<'a> From<&'a weir::consumer::ConsumerRecord> for Message<'a> {
    fn from(r: &'a weir::consumer::ConsumerRecord) -> Self {
        Message {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &r.headers,
        }
    }
}

/// A parsed `-f` format.
#[derive(Debug, Clone)]
pub struct Format {
    tokens: Vec<Token>,
}

impl Format {
    /// Parses a kcat format string. Unknown `%x` tokens are an error, like in kcat.
    pub fn parse(fmt: &str) -> Result<Format, String> {
        let mut tokens = Vec::new();
        let mut lit = Vec::new();
        let bytes = fmt.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'%' => {
                    let Some(&n) = bytes.get(i + 1) else {
                        return Err("format ends with a lone '%' (write %% for a literal '%')".into());
                    };
                    let tok = match n {
                        b'%' => {
                            lit.push(b'%');
                            i += 2;
                            continue;
                        }
                        b't' => Token::Topic,
                        b'p' => Token::Partition,
                        b'o' => Token::Offset,
                        b'k' => Token::Key,
                        b's' => Token::Value,
                        b'T' => Token::Timestamp,
                        b'h' => Token::Headers,
                        b'K' => Token::KeyLen,
                        b'S' => Token::ValueLen,
                        _ => {
                            let ch = fmt[i + 1..].chars().next().unwrap_or('?');
                            return Err(format!(
                                "unsupported format token %{ch} (supported: %t %p %o %k %s %T %h %K %S %%)"
                            ));
                        }
                    };
                    if !lit.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut lit)));
                    }
                    tokens.push(tok);
                    i += 2;
                }
                b'\\' => {
                    match bytes.get(i + 1) {
                        Some(b'n') => lit.push(b'\n'),
                        Some(b't') => lit.push(b'\t'),
                        Some(b'r') => lit.push(b'\r'),
                        Some(b'\\') => lit.push(b'\\'),
                        Some(&other) => {
                            // Not an escape we know: keep both characters, as kcat does.
                            lit.push(b'\\');
                            lit.push(other);
                        }
                        None => {
                            lit.push(b'\\');
                            i += 1;
                            continue;
                        }
                    }
                    i += 2;
                }
                _ => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            tokens.push(Token::Literal(lit));
        }
        Ok(Format { tokens })
    }

    /// Writes `m` formatted to `out`. Keys and values are written as raw bytes; null ones print nothing.
    pub fn write<W: Write>(&self, out: &mut W, m: &Message<'_>) -> io::Result<()> {
        let mut num = itoa::Buffer::new();
        for t in &self.tokens {
            match t {
                Token::Literal(b) => out.write_all(b)?,
                Token::Topic => out.write_all(m.topic.as_bytes())?,
                Token::Partition => out.write_all(num.format(m.partition).as_bytes())?,
                Token::Offset => out.write_all(num.format(m.offset).as_bytes())?,
                Token::Timestamp => out.write_all(num.format(m.timestamp).as_bytes())?,
                Token::Key => out.write_all(m.key.unwrap_or_default())?,
                Token::Value => out.write_all(m.value.unwrap_or_default())?,
                Token::KeyLen => {
                    out.write_all(num.format(m.key.map_or(-1, |k| k.len() as i64)).as_bytes())?
                }
                Token::ValueLen => {
                    out.write_all(num.format(m.value.map_or(-1, |v| v.len() as i64)).as_bytes())?
                }
                Token::Headers => {
                    for (i, (k, v)) in m.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(k.as_bytes())?;
                        out.write_all(b"=")?;
                        if let Some(v) = v {
                            out.write_all(v)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(fmt: &str, m: &Message<'_>) -> Vec<u8> {
        let f = Format::parse(fmt).unwrap();
        let mut out = Vec::new();
        f.write(&mut out, m).unwrap();
        out
    }

    #[test]
    fn all_tokens() {
        let headers = vec![
            ("a".to_string(), Some(Bytes::from_static(b"1"))),
            ("b".to_string(), None),
        ];
        let m = Message {
            topic: "t",
            partition: 2,
            offset: 42,
            timestamp: -1,
            key: None,
            value: Some(b"v\xff"),
            headers: &headers,
        };
        assert_eq!(
            render(r"%t|%p|%o|%k|%s|%T|%h|%K|%S|100%%\n\t\r\\\x", &m),
            b"t|2|42||v\xff|-1|a=1,b=|-1|2|100%\n\t\r\\\\x".to_vec()
        );
        assert_eq!(render("%s\n", &m), b"v\xff\n".to_vec());
        let m = Message {
            key: Some(b""),
            offset: i64::MIN,
            ..m
        };
        assert_eq!(render("%K %o", &m), format!("0 {}", i64::MIN).into_bytes());
    }

    #[test]
    fn bad_tokens_rejected() {
        assert!(Format::parse("%x").unwrap_err().contains("%x"));
        assert!(Format::parse("abc%").is_err());
    }
}
