//! A YAML writer whose output reads the same in YAML 1.1 and YAML 1.2.
//!
//! kubectl, Helm and the API server read YAML 1.1, where `y`, `n`, `on`, `off`, `yes`, `no`
//! (in any case) are booleans and `1_000`, `0o17` or `12:30` are numbers. serde_yaml writes
//! YAML 1.2 and leaves such keys bare: the SigningKey CRD's JWK members `n` and `y` were read as
//! `false` and `true`. This writer quotes every string that is not plainly a word in both.

use std::fmt::Write;

use serde_json::Value;

/// Words some YAML version reads as a boolean or null (compared case-insensitively).
const RESERVED: [&str; 13] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "=", "<<", "",
];

/// Whether `s` can be written without quotes and reads back as the same string in YAML 1.1
/// and 1.2. Conservative: anything unusual is quoted.
fn plain(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) {
        return false;
    }
    let Some(first) = s.chars().next() else {
        return false;
    };
    // Numbers, dates, times and .inf/.nan all start with a digit, a sign or a dot.
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return false;
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || " _-./()$@+".contains(c);
    s.chars().all(safe) && !s.ends_with(' ')
}

fn scalar(s: &str) -> String {
    if plain(s) {
        s.to_string()
    } else {
        // A JSON string is a YAML double-quoted scalar with the same escapes.
        Value::String(s.to_string()).to_string()
    }
}

/// Whether a multi-line string reads back the same as a literal block (`|`): one final newline,
/// printable lines without trailing blanks, and a first line that sets the indentation.
fn literal_block(s: &str) -> bool {
    let Some(body) = s.strip_suffix('\n') else {
        return false;
    };
    body.contains('\n')
        && !body.ends_with('\n')
        && !body.starts_with([' ', '\n'])
        && body.lines().all(|l| {
            !l.is_empty()
                && !l.ends_with(' ')
                && l.chars().all(|c| c == ' ' || c.is_ascii_graphic())
        })
}

fn inline(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(scalar(s)),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn write(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let _ = write!(out, "{pad}{}:", scalar(k));
                if let Some(text) = v.as_str().filter(|t| literal_block(t)) {
                    out.push_str(" |\n");
                    for line in text.lines() {
                        let _ = writeln!(out, "{pad}  {line}");
                    }
                    continue;
                }
                match inline(v) {
                    Some(s) => {
                        let _ = writeln!(out, " {s}");
                    }
                    None => {
                        out.push('\n');
                        // Sequences sit at the key's indentation, as kubectl writes them.
                        let inner = if v.is_array() { indent } else { indent + 2 };
                        write(out, v, inner);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match inline(item) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}- {s}");
                    }
                    None => {
                        // The first line of the nested block follows the dash.
                        let mut block = String::new();
                        write(&mut block, item, indent + 2);
                        let _ = write!(out, "{pad}- {}", &block[indent + 2..]);
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", inline(other).unwrap_or_default());
        }
    }
}

/// `value` as a YAML document.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = String::new();
    match inline(&value) {
        Some(s) => out.push_str(&format!("{s}\n")),
        None => write(&mut out, &value, 0),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    #[test]
    fn yaml_1_1_booleans_and_numbers_are_quoted() {
        let doc = json!({
            "n": {"y": "on", "No": ["off", "Yes", "~", "null"]},
            "plain": "RSA modulus, base64url.",
            "numbers": ["1_000", "0o17", "12:30", "2001-12-14", ".inf", "-1", "+1", "1e3"],
            "text": "a: b # c\nsecond line",
            "empty": "",
            "pem": "-----BEGIN CERTIFICATE-----\nMIIB: y\n-----END CERTIFICATE-----\n",
            "two-newlines": "a\nb\n\n",
        });
        let out = super::to_string(&doc).unwrap();
        for quoted in [
            "\"n\":",
            "\"y\": \"on\"",
            "\"No\":",
            "- \"off\"",
            "- \"Yes\"",
            "- \"~\"",
            "- \"null\"",
            "- \"1_000\"",
            "- \"0o17\"",
            "- \"12:30\"",
            "- \"2001-12-14\"",
            "- \".inf\"",
            "- \"-1\"",
            "- \"+1\"",
            "- \"1e3\"",
            "\"a: b # c\\nsecond line\"",
            "empty: \"\"",
            "pem: |\n  -----BEGIN CERTIFICATE-----\n  MIIB: y\n",
            "\"a\\nb\\n\\n\"",
        ] {
            assert!(out.contains(quoted), "{quoted} not in\n{out}");
        }
        // serde_yaml (YAML 1.2) reads it back as the same document.
        let back: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn nested_blocks_round_trip() {
        let doc = json!({
            "spec": {"versions": [{"name": "v1", "schema": {"a": [{"b": 1, "c": [true, null]}]}},
                                  {"name": "v2", "served": false, "empty": {}, "none": []}]},
            "list": [[1, 2], [{"x": "y"}]],
        });
        let out = super::to_string(&doc).unwrap();
        let back: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back, doc, "\n{out}");
    }
}
