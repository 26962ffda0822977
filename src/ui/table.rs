//! Plain-text tables for terminals and CI logs.

/// Renders rows under a header with columns padded to their widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// [`render`], with the last column wrapped at its commas onto continuation lines so that
/// no line is wider than `max` (the other columns are kept whole).
pub fn render_fitted(header: &[&str], rows: &[Vec<String>], max: usize) -> String {
    let Some(last) = header.len().checked_sub(1) else {
        return String::new();
    };
    let mut widths: Vec<usize> = header[..last].iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().take(last).enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let indent: usize = widths.iter().map(|w| w + 2).sum();
    let room = max.saturating_sub(indent).max(16);
    let mut wrapped: Vec<Vec<String>> = Vec::new();
    for r in rows {
        let mut lines = wrap_list(r.get(last).map_or("", String::as_str), room).into_iter();
        let mut first = r.clone();
        first.truncate(last);
        first.push(lines.next().unwrap_or_default());
        wrapped.push(first);
        for more in lines {
            let mut row = vec![String::new(); last];
            row.push(more);
            wrapped.push(row);
        }
    }
    render(header, &wrapped)
}

/// `text` cut after its commas into lines of at most `room` characters (a single item
/// longer than that gets a line of its own).
fn wrap_list(text: &str, room: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for item in text.split_inclusive(',') {
        let item = if line.is_empty() {
            item.trim_start()
        } else {
            item
        };
        if !line.is_empty() && line.chars().count() + item.trim_end().chars().count() > room {
            lines.push(line.trim_end().to_string());
            line = item.trim_start().to_string();
        } else {
            line.push_str(item);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_lists_wrap_under_the_column() {
        let list = (0..30)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let t = super::render_fitted(&["IMAGE", "TARGETS"], &[vec!["img".into(), list]], 40);
        assert!(t.lines().all(|l| l.chars().count() <= 40), "{t}");
        assert!(t.lines().count() > 3, "{t}");
        assert!(
            t.contains("\n       t"),
            "continuations under the column: {t}"
        );
        let joined: String = t.lines().skip(1).map(|l| l[7..].trim()).collect();
        assert_eq!(joined.split(',').count(), 30, "{t}");
    }

    #[test]
    fn pads_columns() {
        let t = super::render(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }
}
