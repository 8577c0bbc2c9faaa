//! The permission matrices, rendered into `docs/permissions.md` ("who may
//! do what"). Each matrix test hands over the table it has just verified
//! against the server; the page must hold exactly that table, so the docs
//! cannot drift from what the server does. `UPDATE_PERMISSIONS_DOC=1 cargo
//! test --test api permission_matrix` rewrites the tables instead.

use std::path::PathBuf;
use std::sync::Mutex;

/// One row: the call (method and path, and the WebSocket event that does
/// the same, if any; or an event alone) and what each column's person gets.
pub struct Row {
    pub call: String,
    pub cells: Vec<String>,
}

impl Row {
    pub fn new(method: &str, path: &str, event: Option<&str>, statuses: &[u16]) -> Row {
        let call = match event {
            Some(event) => format!("`{method} {path}`, `{event}`"),
            None => format!("`{method} {path}`"),
        };
        Row { call, cells: statuses.iter().map(u16::to_string).collect() }
    }

    /// A WebSocket event with no REST twin: each cell is the ack, `ok` or
    /// its error code; `-` where the person has no socket (no token).
    pub fn event(event: &str, outcomes: &[&str]) -> Row {
        Row {
            call: format!("`{event}`"),
            cells: outcomes.iter().map(|cell| if *cell == "-" { "-".into() } else { format!("`{cell}`") }).collect(),
        }
    }
}

/// A socket's answer as the tables show it: `ok` or the error code.
pub fn outcome(ack: &serde_json::Value) -> String {
    if ack["ok"] == true {
        return "ok".into();
    }
    ack["error"]["code"].as_str().unwrap_or("no answer").to_string()
}

/// Tests run in parallel; only one rewrites the page at a time.
static PAGE: Mutex<()> = Mutex::new(());

fn page_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/permissions.md")
}

fn render(columns: &[&str], rows: &[Row]) -> String {
    let mut table = format!("| call | {} |\n|---|{}\n", columns.join(" | "), "---|".repeat(columns.len()));
    for row in rows {
        table += &format!("| {} | {} |\n", row.call, row.cells.join(" | "));
    }
    table
}

/// Checks (or with `UPDATE_PERMISSIONS_DOC=1` writes) the table between the
/// page's `<!-- matrix:NAME -->` and `<!-- /matrix:NAME -->` markers.
pub fn assert_documented(name: &str, columns: &[&str], rows: &[Row]) {
    let _page = PAGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = page_path();
    let page = std::fs::read_to_string(&path).expect("docs/permissions.md");
    let (open, close) = (format!("<!-- matrix:{name} -->\n"), format!("<!-- /matrix:{name} -->"));
    let start = page.find(&open).unwrap_or_else(|| panic!("docs/permissions.md has no {open}")) + open.len();
    let end = page[start..].find(&close).unwrap_or_else(|| panic!("docs/permissions.md has no {close}")) + start;
    let table = render(columns, rows);
    if std::env::var_os("UPDATE_PERMISSIONS_DOC").is_some() {
        std::fs::write(&path, format!("{}{table}{}", &page[..start], &page[end..])).expect("write the page");
    } else {
        assert!(
            page[start..end] == table,
            "docs/permissions.md's {name} table differs from what the server does; \
             run UPDATE_PERMISSIONS_DOC=1 cargo test --test api permission_matrix\n{table}"
        );
    }
}
