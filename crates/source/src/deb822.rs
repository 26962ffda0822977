//! The deb822 "Field: value" stanza format shared by control files, `Release` and `Packages`.
//!
//! Pure text in, stanzas out. Only what Debian's own files use: case-insensitive field
//! names, continuation lines starting with a space or tab, stanzas separated by blank lines.

/// One paragraph of fields, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stanza {
    fields: Vec<(String, String)>,
    /// 1-based line where the stanza starts, for error messages.
    pub line: usize,
}

impl Stanza {
    /// The value of a field; for multi-line fields, the first line and the continuation
    /// lines joined with `\n` (each without its leading space).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `text` into stanzas; an error is `(line, what)`.
pub(crate) fn parse(text: &str) -> Result<Vec<Stanza>, (usize, String)> {
    let mut out = Vec::new();
    let mut cur = Stanza::default();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some((_, value)) = cur.fields.last_mut() else {
                return Err((lineno, "continuation line with no field before it".into()));
            };
            let cont = &line[1..];
            value.push('\n');
            if cont != "." {
                value.push_str(cont);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err((lineno, format!("expected \"Field: value\", got {line:?}")));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err((lineno, format!("bad field name {name:?}")));
        }
        if cur.fields.is_empty() {
            cur.line = lineno;
        }
        if cur.get(name).is_some() {
            return Err((lineno, format!("field {name} appears twice in one stanza")));
        }
        cur.fields
            .push((name.to_string(), value.trim().to_string()));
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_and_continuations() {
        let t =
            "Package: a\nDescription: short\n long\n .\n more\n\n\nPackage: b\nsha256:\n x 1 f\n";
        let s = parse(t).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("package"), Some("a"));
        assert_eq!(s[0].get("Description"), Some("short\nlong\n\nmore"));
        assert_eq!(s[1].get("SHA256"), Some("\nx 1 f"));
        assert_eq!(s[1].line, 8);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("A: b\nnonsense\n").unwrap_err().0, 2);
        assert_eq!(parse(" x\n").unwrap_err().0, 1);
        assert_eq!(parse("A: 1\na: 2\n").unwrap_err().0, 2);
    }
}
