//! Output in flux-accounting's formats (reference §2.0): padded tables with
//! `-+-` separators, JSON lists with indent 2, and Python-style `-o/--format`
//! strings.

use std::fmt::Write as _;

use replay::RowDiff;
use serde_json::{Number, Value};

use crate::error::{Error, Result};

/// The value shown as `unlimited`.
pub use fluxacct_core::limits::INTEGER_MAX;

/// A result set: column names and rows of JSON values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// An empty result with these columns.
    pub fn new(columns: &[&str]) -> Rows {
        Rows { columns: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new() }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<Value>) {
        self.rows.push(row);
    }

    /// Keeps only the named columns (validated: `invalid fields: x, y`).
    pub fn select(&self, fields: &str) -> Result<Rows> {
        let wanted: Vec<&str> = fields.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
        let bad: Vec<&str> = wanted.iter().copied().filter(|f| !self.columns.iter().any(|c| c == f)).collect();
        if !bad.is_empty() {
            return Err(Error::invalid(format!("invalid fields: {}", bad.join(", "))));
        }
        let idx: Vec<usize> = wanted.iter().map(|f| self.columns.iter().position(|c| c == f).unwrap_or(0)).collect();
        Ok(Rows {
            columns: wanted.iter().map(|s| s.to_string()).collect(),
            rows: self.rows.iter().map(|r| idx.iter().map(|&i| r[i].clone()).collect()).collect(),
        })
    }
}

/// Python's `str(float)`: `1.0`, `0.5`, `1e-05`, `1e+16`.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{x:?}");
    match s.find('e') {
        None => s,
        Some(i) => {
            let (mant, exp) = s.split_at(i);
            let exp = &exp[1..];
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let mant = mant.strip_suffix(".0").unwrap_or(mant);
            format!("{mant}e{sign}{digits:0>2}")
        }
    }
}

/// Python's `str()` of a cell value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => number_str(n),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number_str(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        py_float(n.as_f64().unwrap_or(0.0))
    }
}

fn table_cell(col: &str, v: &Value) -> String {
    if col == "active" {
        if let Some(i) = v.as_i64() {
            return if i != 0 { "true".into() } else { "false".into() };
        }
    }
    if v.as_i64() == Some(INTEGER_MAX) {
        return "unlimited".into();
    }
    py_str(v)
}

/// The table layout: header joined by `" | "`, a `-+-` separator, rows;
/// every cell left-justified to its column width; no trailing newline.
pub fn as_table(rows: &Rows) -> String {
    let cells: Vec<Vec<String>> =
        rows.rows.iter().map(|r| rows.columns.iter().zip(r).map(|(c, v)| table_cell(c, v)).collect()).collect();
    let header: Vec<&str> = rows.columns.iter().map(String::as_str).collect();
    pipe_lines(&header, &cells, PipeStyle { rule: true, pad_last: true }).join("\n")
}

/// `n` and the noun, singular for one: `1 association`, `3 sub-banks`.
pub fn count_of(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How many terminal columns `s` takes: wide (CJK, emoji) characters
/// count two, combining marks none.
pub fn display_width(s: &str) -> usize {
    // Printable ASCII (most cells: numbers, ids, times) is one column a byte.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.len();
    }
    unicode_width::UnicodeWidthStr::width(s)
}

/// How [`pipe_lines`] lays out a table.
#[derive(Debug, Clone, Copy)]
pub struct PipeStyle {
    /// A `-+-` rule under the header.
    pub rule: bool,
    /// Whether the last column is padded to its width too.
    pub pad_last: bool,
}

/// The lines of a table with `" | "` between columns: the header, then
/// each row of `cells`, every cell left-justified to its column's width
/// (the widest cell or header, in terminal columns: a CJK character or an
/// emoji takes two, see [`display_width`]).
pub fn pipe_lines(header: &[&str], cells: &[Vec<String>], style: PipeStyle) -> Vec<String> {
    let widths: Vec<usize> = header
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| display_width(&r[i])).max().unwrap_or(0).max(display_width(c)))
        .collect();
    let n = widths.len();
    let line = |items: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::with_capacity(widths.iter().sum::<usize>() + 3 * n);
        for (i, s) in items.enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            out.push_str(s);
            let pad = if i + 1 == n && !style.pad_last { 0 } else { widths[i].saturating_sub(display_width(s)) };
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out
    };
    let mut out = Vec::with_capacity(cells.len() + 2);
    out.push(line(&mut header.iter().copied()));
    if style.rule {
        out.push(widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>().join("-+-"));
    }
    for r in cells {
        out.push(line(&mut r.iter().map(String::as_str)));
    }
    out
}

/// The JSON layout: a list of objects (indent 2) with keys in column order,
/// `2147483647` shown as `"unlimited"` (Python's `json.dumps(rows, indent=2)`).
pub fn as_json(rows: &Rows) -> String {
    if rows.rows.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[\n");
    for (i, r) in rows.rows.iter().enumerate() {
        out.push_str("  {\n");
        for (j, (c, v)) in rows.columns.iter().zip(r).enumerate() {
            let v = if v.as_i64() == Some(INTEGER_MAX) { Value::String("unlimited".into()) } else { v.clone() };
            out.push_str(&format!("    {}: {}", json_scalar(&Value::String(c.clone())), json_scalar(&v)));
            out.push_str(if j + 1 < r.len() { ",\n" } else { "\n" });
        }
        out.push_str(if i + 1 < rows.rows.len() { "  },\n" } else { "  }\n" });
    }
    out.push(']');
    out
}

/// One JSON value as Python's json.dumps writes it (floats as `1.0`).
pub fn json_scalar(v: &Value) -> String {
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => py_float(n.as_f64().unwrap_or(0.0)),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// `json.dumps(value, indent=2)` for nested values.
pub fn to_pretty_json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// One parsed replacement field of a format string.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Field { name: String, spec: String },
}

fn parse_format(fmt: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut inner = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    inner.push(c);
                }
                if !closed {
                    return Err(Error::invalid("Single '{' encountered in format string"));
                }
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                let (name, spec) = match inner.split_once(':') {
                    Some((n, s)) => (n.to_string(), s.to_string()),
                    None => (inner, String::new()),
                };
                out.push(Piece::Field { name, spec });
            }
            '}' => return Err(Error::invalid("Single '}' encountered in format string")),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

/// The field names a format string uses.
pub fn format_fields(fmt: &str) -> Result<Vec<String>> {
    Ok(parse_format(fmt)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Field { name, .. } => Some(name),
            Piece::Lit(_) => None,
        })
        .collect())
}

/// Applies a Python format spec (`[[fill]align][sign][0][width][,][.prec][type]`).
pub fn apply_spec(v: &Value, spec: &str) -> Result<String> {
    let bad = || Error::invalid(format!("Invalid format specifier '{spec}'"));
    let cs: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut fill = ' ';
    let mut align: Option<char> = None;
    if cs.len() >= 2 && matches!(cs[1], '<' | '>' | '^' | '=') {
        fill = cs[0];
        align = Some(cs[1]);
        i = 2;
    } else if !cs.is_empty() && matches!(cs[0], '<' | '>' | '^' | '=') {
        align = Some(cs[0]);
        i = 1;
    }
    let mut sign = '-';
    if i < cs.len() && matches!(cs[i], '+' | '-' | ' ') {
        sign = cs[i];
        i += 1;
    }
    if i < cs.len() && cs[i] == '0' {
        if align.is_none() {
            fill = '0';
            align = Some('=');
        }
        i += 1;
    }
    let mut width = 0usize;
    while i < cs.len() && cs[i].is_ascii_digit() {
        width = width * 10 + cs[i].to_digit(10).unwrap_or(0) as usize;
        i += 1;
    }
    let mut comma = false;
    if i < cs.len() && (cs[i] == ',' || cs[i] == '_') {
        comma = true;
        i += 1;
    }
    let mut prec: Option<usize> = None;
    if i < cs.len() && cs[i] == '.' {
        i += 1;
        let mut p = 0usize;
        let start = i;
        while i < cs.len() && cs[i].is_ascii_digit() {
            p = p * 10 + cs[i].to_digit(10).unwrap_or(0) as usize;
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        prec = Some(p);
    }
    let ty = if i < cs.len() { Some(cs[i]) } else { None };
    if i + usize::from(ty.is_some()) != cs.len() {
        return Err(bad());
    }
    let is_num = v.is_number();
    let mut body = match (ty, v) {
        (Some('f' | 'F'), _) | (Some('e' | 'E'), _) | (Some('g' | 'G'), _) | (Some('%'), _) => {
            let x = v.as_f64().ok_or_else(|| {
                Error::invalid(format!("Unknown format code '{}' for object of type 'str'", ty.unwrap_or('f')))
            })?;
            let p = prec.unwrap_or(6);
            match ty {
                Some('e' | 'E') => {
                    let s = format!("{x:.p$e}");
                    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                    let (sg, d) = e.strip_prefix('-').map(|d| ('-', d)).unwrap_or(('+', e));
                    format!("{m}e{sg}{d:0>2}")
                }
                Some('%') => format!("{:.p$}%", x * 100.0),
                Some('g' | 'G') => py_float(x),
                _ => format!("{x:.p$}"),
            }
        }
        (Some('d'), Value::Number(n)) if n.is_i64() || n.is_u64() => number_str(n),
        (Some('d'), _) => return Err(Error::invalid("Unknown format code 'd' for object of type 'float'")),
        (Some('s'), Value::String(s)) | (None, Value::String(s)) => match prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        (Some('s'), _) => return Err(Error::invalid("Unknown format code 's' for non-string")),
        (None, Value::Number(n)) => match (prec, n.as_f64()) {
            (Some(p), Some(x)) if !(n.is_i64() || n.is_u64()) => format!("{x:.p$}"),
            _ => number_str(n),
        },
        (None, other) => py_str(other),
        (Some(_), _) => return Err(bad()),
    };
    if comma && is_num {
        body = group_thousands(&body);
    }
    if is_num && sign != '-' && !body.starts_with('-') {
        body.insert(0, sign);
    }
    let len = body.chars().count();
    if len >= width {
        return Ok(body);
    }
    let padn = width - len;
    let align = align.unwrap_or(if is_num { '>' } else { '<' });
    let f = |n: usize| fill.to_string().repeat(n);
    Ok(match align {
        '<' => format!("{body}{}", f(padn)),
        '^' => format!("{}{body}{}", f(padn / 2), f(padn - padn / 2)),
        '=' => {
            let (sg, rest) = if body.starts_with(['-', '+', ' ']) { body.split_at(1) } else { ("", body.as_str()) };
            format!("{sg}{}{rest}", f(padn))
        }
        _ => format!("{}{body}", f(padn)),
    })
}

fn group_thousands(s: &str) -> String {
    let (sign, rest) = if s.starts_with('-') { s.split_at(1) } else { ("", s) };
    let (int, frac) = match rest.find('.') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}{frac}")
}

/// Renders rows with a `-o/--format` string: a header line (the format
/// applied to the column names, with type specs dropped), then one line per
/// row with raw values. Unknown fields give flux-accounting's error.
pub fn as_format(rows: &Rows, fmt: &str) -> Result<String> {
    let pieces = parse_format(fmt)?;
    for p in &pieces {
        if let Piece::Field { name, .. } = p {
            if !rows.columns.iter().any(|c| c == name) {
                return Err(Error::invalid(format!(
                    "Invalid column name in format string: {name}. Available columns: {}",
                    rows.columns.join(",")
                )));
            }
        }
    }
    let render = |get: &dyn Fn(&str) -> Value, header: bool| -> Result<String> {
        let mut s = String::new();
        for p in &pieces {
            match p {
                Piece::Lit(l) => s.push_str(l),
                Piece::Field { name, spec } => {
                    let spec = if header { header_spec(spec) } else { spec.clone() };
                    s.push_str(&apply_spec(&get(name), &spec)?);
                }
            }
        }
        Ok(s)
    };
    let mut lines = vec![render(&|n| Value::String(n.to_string()), true)?];
    for r in &rows.rows {
        let get = |n: &str| rows.columns.iter().position(|c| c == n).map(|i| r[i].clone()).unwrap_or(Value::Null);
        lines.push(render(&get, false)?);
    }
    Ok(lines.join("\n"))
}

/// A spec with its precision and type dropped (for header lines).
pub fn header_spec(spec: &str) -> String {
    let s = match spec.find('.') {
        Some(i) => &spec[..i],
        None => spec,
    };
    s.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%').trim_end_matches(',').to_string()
}

/// `col=value, ...` for a whole row.
pub fn row_text(row: &[(String, rusqlite::types::Value)]) -> String {
    row.iter().map(|(c, v)| format!("{c}={}", replay::canonical::show_value(v))).collect::<Vec<_>>().join(", ")
}

/// Renders differences between live (side A) and replayed (side B) tables,
/// one line each.
pub fn render_check(diffs: &[RowDiff]) -> String {
    let mut out = String::new();
    for d in diffs {
        let head = format!("{} [{}]", d.table(), d.key_text());
        match d {
            RowDiff::Changed { columns, .. } => {
                for (c, live, replayed) in columns {
                    let _ = writeln!(
                        out,
                        "{head}: {c}: live {}, replayed {}",
                        replay::canonical::show_value(live),
                        replay::canonical::show_value(replayed)
                    );
                }
            }
            RowDiff::Removed { row, .. } => {
                let _ = writeln!(out, "{head}: row in live only (not produced by the log): {}", row_text(row));
            }
            RowDiff::Added { row, .. } => {
                let _ = writeln!(out, "{head}: row missing from live (produced by the log): {}", row_text(row));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Rows {
        let mut r = Rows::new(&["bank_id", "bank", "active", "shares", "job_usage"]);
        r.push(vec![json!(1), json!("root"), json!(1), json!(1), json!(0.0)]);
        r.push(vec![json!(2), json!("giants"), json!(0), json!(2147483647), json!(16089.0)]);
        r
    }

    #[test]
    fn table_matches_flux_accounting_layout() {
        let t = as_table(&sample());
        let expected = "bank_id | bank   | active | shares    | job_usage\n\
                        --------+--------+--------+-----------+----------\n\
                        1       | root   | true   | 1         | 0.0      \n\
                        2       | giants | false  | unlimited | 16089.0  ";
        assert_eq!(t, expected);
    }

    #[test]
    fn table_columns_line_up_by_display_width_for_cjk_and_emoji_names() {
        let mut r = Rows::new(&["username", "bank"]);
        r.push(vec![json!("山田太郎"), json!("A")]);
        r.push(vec![json!("🦀crab"), json!("B")]);
        r.push(vec![json!("bob"), json!("C")]);
        let t = as_table(&r);
        let lines: Vec<&str> = t.lines().collect();
        // Every "|" sits in the same terminal column.
        let bar_col = |l: &str| display_width(&l[..l.find('|').unwrap()]);
        assert!(lines.iter().filter(|l| l.contains('|')).all(|l| bar_col(l) == 9), "{t}");
        assert_eq!(lines[2], "山田太郎 | A   ");
        assert_eq!(lines[3], "🦀crab   | B   ");
        assert_eq!(display_width("山田"), 4);
    }

    #[test]
    fn json_is_a_list_with_unlimited() {
        let j = as_json(&sample());
        assert!(j.starts_with("[\n  {\n    \"bank_id\": 1,\n    \"bank\": \"root\","), "{j}");
        assert!(j.contains("\"shares\": \"unlimited\""));
        assert!(j.contains("\"active\": 0"));
    }

    #[test]
    fn format_strings() {
        let out = as_format(&sample(), "{bank:<8}|{job_usage:>10.2f}").unwrap();
        assert_eq!(out, "bank    | job_usage\nroot    |      0.00\ngiants  |  16089.00");
        let e = as_format(&sample(), "{nope}").unwrap_err().to_string();
        assert!(e.starts_with("Invalid column name in format string: nope."), "{e}");
    }

    #[test]
    fn python_floats() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.285714), "0.285714");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(16089.0), "16089.0");
    }

    #[test]
    fn select_fields() {
        let r = sample().select("bank,shares").unwrap();
        assert_eq!(r.columns, vec!["bank", "shares"]);
        assert_eq!(sample().select("bank,foo,bar").unwrap_err().to_string(), "invalid fields: foo, bar");
    }
}
