//! The results file: one JSON object per line, as `weir_testkit::bench_out` writes them.

use std::collections::BTreeMap;

use serde_json::Value;

/// A parameter of a case: a number (plottable on an axis) or a label.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A numeric parameter.
    Num(f64),
    /// A label.
    Str(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Num(x) => write!(f, "{x}"),
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

/// Who measured what: the fields every measurement and series line has.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The bench target.
    pub bench: String,
    /// The comparison's label, the same for every client in it.
    pub case: String,
    /// `weir`, `weir-<variant>`, a peer or a baseline.
    pub client: String,
    /// 1-based run number.
    pub run: u64,
    /// The case's parameters as this line gives them.
    pub params: BTreeMap<String, ParamValue>,
}

/// One line of the results file.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// One run of one client: named numbers.
    Measurement {
        /// Who measured it.
        key: Key,
        /// `wall_s`, `cpu_s`, ...; a `null` (non-finite when written) is left out.
        metrics: BTreeMap<String, f64>,
    },
    /// One run of one client over time: equally long columns, `t_s` the x axis.
    Series {
        /// Who measured it.
        key: Key,
        /// The columns by name.
        columns: BTreeMap<String, Vec<f64>>,
    },
    /// Facts about the machine (no bench) or one bench's environment.
    Meta {
        /// The bench they are about, if any.
        bench: Option<String>,
        /// Name and value.
        facts: BTreeMap<String, String>,
    },
}

/// All lines of a results file, in order; an unreadable line is an error naming its number.
pub fn parse_all(text: &str) -> Result<Vec<Line>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// One line of the results file.
pub fn parse_line(line: &str) -> Result<Line, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let o = v.as_object().ok_or("not a JSON object")?;
    let text = |k: &str| -> Result<String, String> {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no string \"{k}\""))
    };
    if let Some(meta) = o.get("meta") {
        let facts = meta
            .as_object()
            .ok_or("\"meta\" is not an object")?
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                (k.clone(), v)
            })
            .collect();
        return Ok(Line::Meta {
            bench: o.get("bench").and_then(Value::as_str).map(str::to_owned),
            facts,
        });
    }
    let params = match o.get("params") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(p)) => p
            .iter()
            .filter_map(|(k, v)| {
                let v = match v {
                    Value::Number(n) => ParamValue::Num(n.as_f64()?),
                    Value::String(s) => ParamValue::Str(s.clone()),
                    Value::Bool(b) => ParamValue::Str(b.to_string()),
                    _ => return None,
                };
                Some((k.clone(), v))
            })
            .collect(),
        Some(_) => return Err("\"params\" is not an object".into()),
    };
    let key = Key {
        bench: text("bench")?,
        case: text("case")?,
        client: text("client")?,
        run: o
            .get("run")
            .and_then(Value::as_u64)
            .ok_or("no whole number \"run\"")?,
        params,
    };
    if let Some(m) = o.get("metrics") {
        let metrics = m
            .as_object()
            .ok_or("\"metrics\" is not an object")?
            .iter()
            .filter_map(|(k, v)| v.as_f64().filter(|x| x.is_finite()).map(|x| (k.clone(), x)))
            .collect();
        return Ok(Line::Measurement { key, metrics });
    }
    if let Some(s) = o.get("series") {
        let mut columns = BTreeMap::new();
        let mut len = None;
        for (k, v) in s.as_object().ok_or("\"series\" is not an object")? {
            let col: Vec<f64> = v
                .as_array()
                .ok_or_else(|| format!("series column {k} is not an array"))?
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect();
            if *len.get_or_insert(col.len()) != col.len() {
                return Err(format!("series column {k} differs in length from the others"));
            }
            columns.insert(k.clone(), col);
        }
        return Ok(Line::Series { key, columns });
    }
    Err("neither \"metrics\", \"series\" nor \"meta\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_kinds_of_line() {
        let m = parse_line(
            r#"{"bench":"b","case":"c","client":"weir","run":1,"params":{"threads":4,"codec":"lz4"},"metrics":{"wall_s":0.5,"x":null}}"#,
        )
        .unwrap();
        let Line::Measurement { key, metrics } = m else {
            panic!("{m:?}")
        };
        assert_eq!(
            (
                key.bench.as_str(),
                key.case.as_str(),
                key.client.as_str(),
                key.run
            ),
            ("b", "c", "weir", 1)
        );
        assert_eq!(key.params["threads"], ParamValue::Num(4.0));
        assert_eq!(key.params["codec"], ParamValue::Str("lz4".into()));
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics["wall_s"], 0.5);

        let s = parse_line(
            r#"{"bench":"b","case":"c","client":"weir","run":2,"series":{"t_s":[0,1],"rss_mib":[3,4]}}"#,
        )
        .unwrap();
        let Line::Series { columns, .. } = s else {
            panic!("{s:?}")
        };
        assert_eq!(columns["rss_mib"], vec![3.0, 4.0]);

        let t = parse_line(r#"{"meta":{"nproc":"2","n":3}}"#).unwrap();
        assert_eq!(
            t,
            Line::Meta {
                bench: None,
                facts: [
                    ("n".to_owned(), "3".to_owned()),
                    ("nproc".to_owned(), "2".to_owned())
                ]
                .into()
            }
        );
    }

    #[test]
    fn rejects_what_is_not_a_result() {
        assert!(parse_line("{").is_err());
        assert!(parse_line(r#"{"bench":"b","case":"c","client":"weir","run":1}"#).is_err());
        assert!(parse_line(
            r#"{"bench":"b","case":"c","client":"weir","run":1,"series":{"t_s":[0,1],"y":[1]}}"#
        )
        .is_err());
        let e = parse_all("\n{\"meta\":{}}\nnope\n").unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
    }
}
