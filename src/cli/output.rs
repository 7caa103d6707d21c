//! What the client commands print: aligned tables and `key: value` lists
//! for people, the API's JSON as is (pretty) for scripts.

use serde_json::Value;

/// `--output`: tables for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialise")
}

/// One value in one cell: strings bare, null as `-`, lists of scalars joined
/// by commas, anything else as compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            if items.is_empty() {
                "-".into()
            } else {
                items.iter().map(cell).collect::<Vec<_>>().join(",")
            }
        }
        Value::Object(map) if map.is_empty() => "-".into(),
        other => other.to_string(),
    }
}

/// Rows under headers, columns padded to their widest cell. Each column is
/// `(header, JSON pointer into the row)`.
pub fn table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let mut grid: Vec<Vec<String>> = vec![columns.iter().map(|(h, _)| h.to_string()).collect()];
    for row in rows {
        grid.push(
            columns
                .iter()
                .map(|(_, pointer)| cell(row.pointer(pointer).unwrap_or(&Value::Null)))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| grid.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &grid {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Every top-level field of an object as `key: value`, except `skip`.
pub fn fields(object: &Value, skip: &[&str]) -> String {
    let Some(map) = object.as_object() else {
        return format!("{}\n", cell(object));
    };
    let shown: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .collect();
    let width = shown.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (key, value) in shown {
        out.push_str(&format!("{:<width$} {}\n", format!("{key}:"), cell(value)));
    }
    out
}

/// A list page: the table, then where the next page starts (on stderr, so
/// stdout stays the table alone).
pub fn page(answer: &Value, columns: &[(&str, &str)]) {
    let rows = answer["data"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        eprintln!("(none)");
    } else {
        print!("{}", table(&rows, columns));
    }
    if let Some(cursor) = answer["next_cursor"].as_str() {
        eprintln!("more: add --cursor {cursor}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_show_missing_values_as_dashes() {
        let rows = [
            json!({"id": "wh_1", "events": ["A", "B"], "scope": {"object_type": "model"}}),
            json!({"id": "wh_22", "events": [], "name": null}),
        ];
        let text = table(
            &rows,
            &[
                ("ID", "/id"),
                ("EVENTS", "/events"),
                ("TYPE", "/scope/object_type"),
            ],
        );
        assert_eq!(
            text,
            "ID     EVENTS  TYPE\nwh_1   A,B     model\nwh_22  -       -\n"
        );
    }

    #[test]
    fn fields_list_keys_in_order() {
        let text = fields(
            &json!({"id": "p", "enabled": true, "n": 3, "s": "x"}),
            &["s"],
        );
        assert_eq!(text, "id:      p\nenabled: true\nn:       3\n");
    }
}
