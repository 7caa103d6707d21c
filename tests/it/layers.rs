//! Every module of `src` may use only modules of the layers below its own, as
//! docs/architecture.md lists them (section "Layers"): no cycle, no arrow up,
//! no arrow between two modules of one layer.
//!
//! The edges are read from the source text: each `crate::…` path (in `use`
//! declarations, in code, in attributes such as serde's `deserialize_with`)
//! and each `super::` path that climbs out of its top-level module.
//! Comments are ignored. Run it alone with `cargo test --test it layers::`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, top first, as the architecture document states them.
fn documented_layers() -> Vec<Vec<String>> {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .expect("docs/architecture.md");
    parse_layers(&doc)
        .expect("docs/architecture.md has a \"## Layers\" section with a ```text block")
}

/// The lines of the first fenced block after `## Layers`: one layer a line,
/// its modules separated by spaces; `#` starts a remark.
fn parse_layers(doc: &str) -> Option<Vec<Vec<String>>> {
    let section = doc.split("\n## Layers").nth(1)?;
    let block = section.split("```").nth(1)?;
    let layers: Vec<Vec<String>> = block
        .lines()
        .skip(1) // the fence's language tag
        .map(|line| line.split('#').next().unwrap_or(""))
        .map(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|layer| !layer.is_empty())
        .collect();
    (!layers.is_empty()).then_some(layers)
}

/// A use of another top-level module: where, and which module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
}

/// The source text with comments blanked out (strings and line breaks kept,
/// so positions and line numbers stay right).
fn without_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let end: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let rest: String = chars[j + 1..].iter().collect();
            let len = rest
                .find(&end)
                .map_or(rest.chars().count(), |b| rest[..b].chars().count());
            let stop = (j + 1 + len + end.chars().count()).min(chars.len());
            out.extend(&chars[i..stop]);
            i = stop;
        } else if c == '"' {
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    out.push(chars[i]);
                    i += 1;
                }
                out.push(chars[i]);
                i += 1;
            }
            if i < chars.len() {
                out.push('"');
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '"') is copied whole; a lifetime is not one.
            let close = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            let stop = close.map_or(i + 1, |j| j + 1);
            out.extend(&chars[i..stop]);
            i = stop;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (ident_char(chars[i - 1]) || chars[i - 1] == '$')
}

/// The identifier starting at byte `at` of `text` (after spaces).
fn ident_at(text: &str, at: usize) -> (&str, usize) {
    let rest = &text[at..];
    let start = at + (rest.len() - rest.trim_start().len());
    let end = text[start..]
        .find(|c: char| !ident_char(c))
        .map_or(text.len(), |n| start + n);
    (&text[start..end], end)
}

/// The first segment of each path in a `{…}` group starting at byte `open`.
fn group_heads(text: &str, open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (offset, c) in text[open..].char_indices() {
        match c {
            '{' => {
                depth += 1;
                item_start = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => item_start = true,
            c if c.is_whitespace() => {}
            _ if item_start && depth == 1 => {
                let (head, _) = ident_at(text, open + offset);
                if !head.is_empty() {
                    heads.push(head.to_string());
                }
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// The top-level modules a file of module `path` (e.g. `["api", "auth"]`;
/// a `mod.rs` is its directory's module) refers to outside its own.
fn references(path: &[String], text: &str) -> Vec<(String, usize)> {
    let code = without_comments(text);
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut add = |heads: Vec<String>, at: usize| {
        for head in heads {
            if head != "self" && head != "super" && head != path[0] {
                found.push((head, line_of(at)));
            }
        }
    };
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| ident_char(c) || c == '$') {
            continue;
        }
        add(heads_after(&code, at + "crate::".len()), at);
    }
    // `super::super::x` from deep enough reaches the crate root.
    for (at, _) in code.match_indices("super::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| ident_char(c) || c == ':') {
            continue;
        }
        let mut end = at;
        let mut climbs = 0;
        while code[end..].starts_with("super::") {
            climbs += 1;
            end += "super::".len();
            end += code[end..].len() - code[end..].trim_start().len();
        }
        if climbs >= path.len() {
            add(heads_after(&code, end), at);
        }
    }
    found
}

/// The first path segment(s) at byte `at`: one identifier or a `{…}` group.
fn heads_after(code: &str, at: usize) -> Vec<String> {
    let rest = &code[at..];
    let start = at + (rest.len() - rest.trim_start().len());
    if code[start..].starts_with('{') {
        group_heads(code, start)
    } else {
        vec![ident_at(code, start).0.to_string()]
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every edge between top-level modules of the library (`src/bin`,
/// `main.rs` and `lib.rs` are its users, not part of it).
fn library_edges(src: &Path) -> (BTreeSet<String>, Vec<Edge>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules = BTreeSet::new();
    let mut edges = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let mut path: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if matches!(path[0].as_str(), "bin" | "main" | "lib") {
            continue;
        }
        if path.last().is_some_and(|p| p == "mod") {
            path.pop();
        }
        modules.insert(path[0].clone());
        let text = fs::read_to_string(&file).expect("readable source");
        for (to, line) in references(&path, &text) {
            edges.push(Edge {
                from: path[0].clone(),
                to,
                file: format!("src/{}", relative.display()),
                line,
            });
        }
    }
    (modules, edges)
}

/// What breaks the layering: arrows up or sideways, modules the document
/// does not place, modules it places that do not exist.
fn violations(layers: &[Vec<String>], modules: &BTreeSet<String>, edges: &[Edge]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut layer_of = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        for module in layer {
            if layer_of.insert(module.clone(), i).is_some() {
                problems.push(format!("`{module}` is listed twice"));
            }
        }
    }
    for module in modules {
        if !layer_of.contains_key(module) {
            problems.push(format!(
                "`{module}` is in no layer: add it to docs/architecture.md (## Layers)"
            ));
        }
    }
    for module in layer_of.keys() {
        if !modules.contains(module) {
            problems.push(format!("`{module}` is listed but src has no such module"));
        }
    }
    for edge in edges {
        let (Some(&from), Some(&to)) = (layer_of.get(&edge.from), layer_of.get(&edge.to)) else {
            continue;
        };
        if to <= from {
            let direction = if to == from { "within its layer" } else { "up" };
            problems.push(format!(
                "{}:{}: `{}` uses `{}` ({direction}): only modules of lower layers may be used",
                edge.file, edge.line, edge.from, edge.to
            ));
        }
    }
    problems
}

#[test]
fn every_arrow_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (modules, edges) = library_edges(&src);
    assert!(
        modules.len() > 10 && edges.len() > 50,
        "the walk found the crate"
    );
    let problems = violations(&documented_layers(), &modules, &edges);
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn paths_are_read_from_uses_code_and_attributes_but_not_comments() {
    let text = r#"
        //! See [`crate::docs_only`].
        use crate::{alpha::A, beta, self as me, gamma::{x, y}};
        use super::sibling; // crate::in_a_comment
        /* crate::in_a_block */
        #[serde(deserialize_with = "crate::delta::read")]
        fn f<'a>(s: &'a str) -> char { let _ = crate::epsilon::g(); let _ = "//"; '"' }
        fn g() { super::super::zeta::h(); }
    "#;
    let found: Vec<String> = references(&["own".into(), "sub".into()], text)
        .into_iter()
        .map(|(module, _)| module)
        .collect();
    assert_eq!(
        found,
        ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    );
}

#[test]
fn an_upward_arrow_and_an_unplaced_module_are_reported() {
    let layers = vec![
        vec!["api".to_string()],
        vec!["store".to_string(), "ids".to_string()],
    ];
    let modules: BTreeSet<String> = ["api", "store", "ids", "stray"].map(String::from).into();
    let edge = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        file: format!("src/{from}.rs"),
        line: 1,
    };
    let edges = [
        edge("api", "store"),
        edge("store", "api"),
        edge("store", "ids"),
    ];
    let problems = violations(&layers, &modules, &edges);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("`stray` is in no layer"));
    assert!(problems[1].contains("`store` uses `api` (up)"));
    assert!(problems[2].contains("`store` uses `ids` (within its layer)"));
}

#[test]
fn the_document_lists_layers() {
    let doc = "x\n## Layers\n\ntext\n```text\napi    # the edge\nstore ids\n```\n";
    assert_eq!(
        parse_layers(doc).unwrap(),
        [vec!["api".to_string()], vec!["store".into(), "ids".into()]]
    );
}
