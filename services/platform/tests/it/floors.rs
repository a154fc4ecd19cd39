//! The platform's floors stack one way: each module uses only the modules
//! listed before it in `FLOORS` (the order `lib.rs` documents). A `use
//! crate::…` that points up a floor fails here, naming the edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first.
const FLOORS: &[&str] = &[
    "validation",
    "identifiers",
    "clock",
    "secret",
    "telemetry",
    "error",
    "identity",
    "config",
    "shutdown",
    "sealing",
    "db",
    "bus",
    "outbox",
    "feed",
    "work",
    "inbox",
    "idempotency",
    "grpc",
    "service",
    "testing",
];

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The crate-level modules `code` names as `crate::module`, `crate::{a, b}`,
/// comments aside (doc links do not make a dependency).
fn uses(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names = if let Some(group) = rest.strip_prefix('{') {
                group.split('}').next().unwrap_or_default()
            } else {
                rest
            };
            for name in names.split(',') {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        }
    }
    used
}

#[test]
fn each_floor_uses_only_the_floors_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let floor: BTreeMap<&str, usize> = FLOORS.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut upward = Vec::new();
    let mut unlisted = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|m| m.trim_end_matches(".rs"))
            .expect("a module name");
        if module == "lib" {
            continue;
        }
        let Some(&own) = floor.get(module) else {
            unlisted.insert(module.to_owned());
            continue;
        };
        let code = std::fs::read_to_string(file).expect("readable source");
        for used in uses(&code) {
            // Macros exported at the crate root (`crate::on_tx`) are not floors.
            if let Some(&theirs) = floor.get(used.as_str())
                && theirs > own
            {
                upward.push(format!("{} uses {used}", relative.display()));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "modules missing from FLOORS: {unlisted:?}"
    );
    assert!(upward.is_empty(), "uses pointing up a floor: {upward:#?}");
}

#[test]
fn the_reader_sees_grouped_and_nested_paths_and_skips_comments() {
    let code = "use crate::{db::Db, work};\nlet x = crate::grpc::status(e); // crate::service\n/// [`crate::outbox`]\n";
    let found: Vec<String> = uses(code).into_iter().collect();
    assert_eq!(found, ["db", "grpc", "work"]);
}
