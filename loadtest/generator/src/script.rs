//! The static subset of wrk's Lua scripts that request files such as
//! ../shared/tools/percore/post.lua use: `wrk.method = "..."`,
//! `wrk.body = "..."`, `wrk.headers["Name"] = "..."`, comments and blank
//! lines. Anything else (functions, variables, long strings) is an error,
//! not silently ignored: this generator has no Lua.

pub struct Script {
    pub method: Option<String>,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// A Lua short string literal at the start of s: its value and the rest.
fn string_literal(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let q = match chars.next() {
        Some((_, c @ ('"' | '\''))) => c,
        _ => return Err(format!("expected a quoted string, got `{s}`")),
    };
    let mut v = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'n')) => v.push('\n'),
                Some((_, 'r')) => v.push('\r'),
                Some((_, 't')) => v.push('\t'),
                Some((_, c @ ('\\' | '"' | '\''))) => v.push(c),
                _ => return Err("unsupported escape in string".into()),
            },
            c if c == q => return Ok((v, &s[i + 1..])),
            c => v.push(c),
        }
    }
    Err("unterminated string".into())
}

fn strip_comment(rest: &str) -> Result<(), String> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with("--") {
        Ok(())
    } else {
        Err(format!("unexpected `{rest}`"))
    }
}

pub fn parse(text: &str) -> Result<Script, String> {
    let mut s = Script { method: None, body: None, headers: Vec::new() };
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e} (only wrk.method, wrk.body and wrk.headers[\"X\"] = \"...\" are supported)", n + 1);
        let l = line.trim();
        if l.is_empty() || l.starts_with("--") {
            continue;
        }
        let (lhs, rhs) = l.split_once('=').ok_or_else(|| err(format!("not an assignment: `{l}`")))?;
        let (value, rest) = string_literal(rhs.trim_start()).map_err(err)?;
        strip_comment(rest).map_err(err)?;
        let lhs = lhs.trim();
        if lhs == "wrk.method" {
            s.method = Some(value);
        } else if lhs == "wrk.body" {
            s.body = Some(value);
        } else if let Some(key) = lhs.strip_prefix("wrk.headers[").and_then(|k| k.strip_suffix(']')) {
            let (name, rest) = string_literal(key.trim()).map_err(err)?;
            if !rest.trim().is_empty() {
                return Err(err(format!("bad header key `{key}`")));
            }
            s.headers.push((name, value));
        } else {
            return Err(err(format!("unsupported assignment to `{lhs}`")));
        }
    }
    Ok(s)
}

pub fn load(path: &str) -> Result<Script, String> {
    parse(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_percore_scripts() {
        let s = parse("wrk.method = \"POST\"\nwrk.body   = '[\"I love it.\"]'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n").unwrap();
        assert_eq!(s.method.as_deref(), Some("POST"));
        assert_eq!(s.body.as_deref(), Some("[\"I love it.\"]"));
        assert_eq!(s.headers, vec![("Content-Type".to_string(), "application/json".to_string())]);
    }

    #[test]
    fn refuses_anything_else() {
        assert!(parse("function request() return wrk.format() end").is_err());
        assert!(parse("wrk.body = x").is_err());
        assert!(parse("wrk.path = \"/x\"").is_err());
    }
}
