//! The realtime engine of a learning platform: live sessions with chat,
//! presence, office hours and study groups, over REST and WebSocket.
//!
//! `startup::Application` builds everything from one `config::Config`;
//! `main.rs` is a thin command line around it.

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod engine;
pub mod error;
pub mod http;
pub mod protocol;
pub mod seed;
pub mod startup;
pub mod state;

/// The layers import only downward: domain <- db <- engine <- http (with
/// `protocol` beside domain and `auth` beside db). Read from the sources,
/// so a new upward import fails here rather than in a review.
#[cfg(test)]
mod layering {
    use std::path::Path;

    /// For each layer, the modules it must not import.
    const RULES: &[(&str, &[&str])] = &[
        ("domain", &["db", "engine", "http", "state", "auth", "protocol", "startup"]),
        ("protocol", &["db", "engine", "http", "state", "startup"]),
        ("db", &["engine", "http", "state", "auth", "protocol", "startup"]),
        ("auth.rs", &["engine", "http", "state", "startup"]),
        ("engine", &["http", "state", "startup"]),
    ];

    fn sources(path: &Path, found: &mut Vec<(String, String)>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).expect("readable src").flatten() {
                sources(&entry.path(), found);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(path).expect("readable source");
            found.push((path.display().to_string(), text));
        }
    }

    #[test]
    fn no_layer_imports_one_above_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut broken = Vec::new();
        for (layer, forbidden) in RULES {
            let mut files = Vec::new();
            sources(&src.join(layer), &mut files);
            assert!(!files.is_empty(), "no sources for {layer}");
            for (file, text) in &files {
                for module in *forbidden {
                    if text.contains(&format!("crate::{module}::")) || text.contains(&format!("crate::{module};")) {
                        broken.push(format!("{file} imports crate::{module}"));
                    }
                }
            }
        }
        assert!(broken.is_empty(), "imports against the layers: {broken:#?}");
    }
}
