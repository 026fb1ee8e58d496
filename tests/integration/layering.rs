//! The declared layering of the workspace's modules, checked on every `make test`
//! (ArchUnit-style): each module may import only modules of a lower layer, so no two modules
//! can import each other however indirectly. ARCHITECTURE.md draws the same layers.
//!
//! Between crates the compiler enforces it (citywatch-base, -media, -stages, -db, -web,
//! then citywatch: a crate cannot name one above it); this test checks the order inside each crate and that
//! every crate's modules lie below the next crate's.
//!
//! The scan reads the non-test code of every file under the crates' `src/` and takes each `crate::NAME`
//! path (also inside `use crate::{...}` groups) as an import of module NAME; inside the web
//! crate, each `super::NAME` too.

use std::path::Path;

/// Top-level modules, bottom to top. A module may import modules of lower layers only: the
/// stages in the order the data flows through them, each stage seeing only the words of the
/// stages before it; wiring above the stages; commands and tools on top.
const LAYERS: &[(&str, u32)] = &[
    ("core", 0),
    // The shared vocabulary: boxes, zones, rule kinds, categories, locations.
    ("model", 1),
    // Case policy: numbers, descriptions, the reporting time zone.
    ("cases", 2),
    // Parses and validates into model words and settings; imports no stage.
    ("config", 3),
    ("ingest", 4),
    ("detect", 5),
    // Light-proof structure of zones and of the whole view (bins, the drift guard).
    ("scene", 5),
    // Plates of standing vehicles: the OCR reader behind a trait, rendered test plates.
    ("plate", 6),
    ("episodes", 7),
    ("rules", 8),
    // The verdict memory: what reviewed captures looked like and what operators said.
    ("learn", 9),
    // The closure check (核实): a camera's looks at the place of a case reported handled.
    ("closure", 9),
    ("ratelimit", 9),
    ("evidence", 10),
    ("store", 11),
    // The web crate (crates/web): the review UI, JSON API, metrics, platform callbacks. It
    // sees the running pipeline only through model's boards and traits; its own modules are
    // ordered by WEB_LAYERS.
    ("web", 12),
    // Delivers the store's outbox through a notifier (the platform's webhook).
    ("notify", 13),
    ("analysis", 13),
    ("filing", 14),
    // The camera runner: the one way a camera starts, is analysed and stops.
    ("pipeline", 15),
    ("patrol", 16),
    ("workers", 16),
    ("status", 17),
    ("replay", 18),
    ("eval", 19),
    ("run", 20),
    ("probe", 21),
    ("samples", 21),
    ("platform_sim", 21),
];

/// The web crate's modules, bottom to top (the router in its `lib.rs` on top).
const WEB_LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("state", 0),
    ("html", 0),
    ("summary", 0),
    ("auth", 1),
    ("charts", 1),
    ("templates", 2),
    ("review", 2),
    ("platform", 2),
    ("fleet", 2),
    ("queue", 2),
    // Zones drawn on a camera's picture: checked, stored, sent to the camera.
    ("zones", 2),
    ("api", 3),
    ("pages", 3),
    ("metrics", 3),
    ("case_pages", 4),
    ("admin", 4),
    // The OpenAPI document, gathered from every handler the router registers.
    ("openapi", 5),
];

/// The web crate's source folder: its modules are the `web` layer of [`LAYERS`] and are
/// ordered among themselves by [`WEB_LAYERS`].
const WEB_SRC: &str = "crates/web/src";

/// The code of a file without its test items and comments. Each `#[cfg(test)]` item (a test
/// module, a test-only helper) is cut out to the end of its braces or its `;`, and nothing
/// after it: production code that follows a test-only item is still read.
fn production_code(text: &str) -> String {
    let uncommented = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = uncommented.as_str();
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        rest = &rest[i + "#[cfg(test)]".len()..];
        // The item ends at its first `;` outside braces, or where its first brace closes.
        let mut depth = 0usize;
        let mut end = rest.len();
        for (j, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The modules a piece of code names after `prefix` (`crate::` or `super::`), with the
/// names inside `prefix{a, b::c}` groups.
fn imports(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // Only whole paths: `xcrate::` or `a::crate::` are not ours.
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // The brace that closes this group, past any nested ones.
            let mut open = 1;
            let Some(end) = group.find(|c: char| {
                match c {
                    '{' => open += 1,
                    '}' => open -= 1,
                    _ => {}
                }
                open == 0
            }) else {
                continue;
            };
            // Top-level names of the group: the first segment of each comma-separated item
            // at nesting depth zero.
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        out.push(ident_at(&group[j..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                out.push(name.to_string());
            }
        }
    }
    out
}

fn layer(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source folders of the workspace's crates, bottom to top, relative to the root.
const SOURCES: [&str; 6] = [
    "crates/base/src",
    "crates/media/src",
    "crates/stages/src",
    "crates/db/src",
    WEB_SRC,
    "src",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every import that breaks the layering, as "file: from -> to (why)", over the crates'
/// source folders under `root`.
fn violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for src in SOURCES {
        let src = root.join(src);
        let mut here = Vec::new();
        rust_files(&src, &mut here);
        files.extend(here.into_iter().map(|p| (src.clone(), p)));
    }
    files.sort();
    let mut bad = Vec::new();
    for (src, path) in files {
        let rel = path.strip_prefix(&src).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        let top = parts[0].as_str();
        if matches!(top, "lib" | "main") {
            continue;
        }
        let code = production_code(&std::fs::read_to_string(&path).unwrap());
        if src.ends_with(WEB_SRC) {
            web_violations(rel, top, &code, &mut bad);
            continue;
        }
        let Some(from) = layer(LAYERS, top) else {
            bad.push(format!(
                "{}: module `{top}` is not in the layering table",
                rel.display()
            ));
            continue;
        };
        for to in imports(&code, "crate::") {
            if to == top {
                continue;
            }
            match layer(LAYERS, &to) {
                Some(l) if l < from => {}
                Some(l) => bad.push(format!(
                    "{}: {top} (layer {from}) imports {to} (layer {l})",
                    rel.display()
                )),
                None => bad.push(format!(
                    "{}: imports `{to}`, which is not in the layering table",
                    rel.display()
                )),
            }
        }
    }
    bad
}

/// The layering of one file of the web crate: it may import the lower crates' modules (below
/// the `web` layer) and the web modules below its own (`crate::x` or `super::x`, which from
/// a top-level file is the same).
fn web_violations(rel: &Path, top: &str, code: &str, bad: &mut Vec<String>) {
    let web = layer(LAYERS, "web").unwrap();
    let Some(from) = layer(WEB_LAYERS, top) else {
        bad.push(format!(
            "{}: web module `{top}` is not in the web layering table",
            rel.display()
        ));
        return;
    };
    let mut names = imports(code, "crate::");
    names.extend(imports(code, "super::"));
    for to in names {
        if to == top {
            continue;
        }
        match (layer(WEB_LAYERS, &to), layer(LAYERS, &to)) {
            (Some(l), _) if l < from => {}
            (Some(l), _) => bad.push(format!(
                "{}: web::{top} (layer {from}) imports web::{to} (layer {l})",
                rel.display()
            )),
            (None, Some(l)) if l < web => {}
            (None, Some(l)) => bad.push(format!(
                "{}: web::{top} imports {to} (layer {l}), above the web crate",
                rel.display()
            )),
            (None, None) => bad.push(format!(
                "{}: imports `{to}`, which is in neither layering table",
                rel.display()
            )),
        }
    }
}

#[test]
fn every_module_imports_only_lower_layers() {
    let bad = violations(root());
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn the_table_has_no_module_that_src_lacks_and_names_every_one() {
    let src = root().join("src");
    let modules = |s: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root().join(s))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir() || e.path().extension().is_some_and(|x| x == "rs"))
            .map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .filter(|n| n != "lib" && n != "main")
            .collect();
        names.sort();
        names
    };
    // The web crate is the `web` layer; its own modules are WEB_LAYERS.
    let mut on_disk: Vec<String> = SOURCES
        .iter()
        .flat_map(|s| match *s {
            WEB_SRC => vec!["web".to_string()],
            s => modules(s),
        })
        .collect();
    on_disk.sort();
    let mut declared: Vec<String> = LAYERS.iter().map(|(n, _)| n.to_string()).collect();
    declared.sort();
    assert_eq!(on_disk, declared);
    let mut web_declared: Vec<String> = WEB_LAYERS.iter().map(|(n, _)| n.to_string()).collect();
    web_declared.sort();
    assert_eq!(modules(WEB_SRC), web_declared);
    // A crate's modules all lie below every module of the crate above it.
    let layers_of = |s: &str| -> Vec<u32> {
        match s {
            WEB_SRC => vec![layer(LAYERS, "web").unwrap()],
            s => modules(s)
                .iter()
                .map(|n| layer(LAYERS, n).unwrap())
                .collect(),
        }
    };
    for pair in SOURCES.windows(2) {
        let below = layers_of(pair[0]).into_iter().max().unwrap();
        let above = layers_of(pair[1]).into_iter().min().unwrap();
        assert!(
            below < above,
            "{} reaches layer {below}, {} starts at {above}",
            pair[0],
            pair[1]
        );
    }
    // lib.rs's doc lists every module.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for (m, _) in LAYERS {
        assert!(
            lib.contains(&format!("[`{m}`]")),
            "the lib.rs doc does not list `{m}`"
        );
    }
}

/// The check itself catches what it must: each cycle the restructuring removed, put back
/// in a copy of the tree, is reported.
#[test]
fn the_scan_reports_the_cycles_it_forbids() {
    let cases = [
        // config reaching up into a stage
        (
            "crates/base/src/config/mod.rs",
            "use crate::rules::engine::Candidate;\n",
            "config (layer 3) imports rules",
        ),
        // ingest <-> evidence
        (
            "crates/media/src/ingest/ring.rs",
            "use crate::evidence::image::Picture;\n",
            "ingest (layer 4) imports evidence",
        ),
        // evidence <-> store
        (
            "crates/stages/src/evidence/mod.rs",
            "use crate::store::Store;\n",
            "evidence (layer 10) imports store",
        ),
        // a stage importing the command
        (
            "src/workers/host.rs",
            "use crate::{run::RunOptions, core};\n",
            "workers (layer 16) imports run",
        ),
        // web: auth <-> pages
        (
            "crates/web/src/auth.rs",
            "use super::pages::home;\n",
            "web::auth (layer 1) imports web::pages",
        ),
        // web reaching up into the pipeline (and so GStreamer)
        (
            "crates/web/src/state.rs",
            "use crate::{pipeline::Launcher, store::Store};\n",
            "web::state imports pipeline",
        ),
    ];
    for (file, line, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        for src in SOURCES {
            let to = dir.path().join(src);
            std::fs::create_dir_all(&to).unwrap();
            copy_tree(&root().join(src), &to);
        }
        let p = dir.path().join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{line}{text}")).unwrap();
        let bad = violations(dir.path());
        assert!(
            bad.iter().any(|b| b.contains(expect)),
            "{file}: expected `{expect}` in {bad:?}"
        );
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let code = "use crate::{core::Clock, model::{BBox, Zone}, ingest};\nlet x = crate::store::Store::new();\n// crate::web in a comment\nlet y = not_crate::eval::x;";
    let mut got = imports(&production_code(code), "crate::");
    got.sort();
    assert_eq!(got, ["core", "ingest", "model", "store"]);
    // A test-only item hides only itself: production code after it is still read.
    let code = "#[cfg(test)]\nfn helper() { crate::eval::x(); }\n#[cfg(test)]\nuse crate::web::Y;\nfn f() { crate::store::go(); }\n#[cfg(test)]\nmod tests {\n    use crate::run::X;\n}\n";
    assert_eq!(imports(&production_code(code), "crate::"), ["store"]);
}

/// The web crate builds without GStreamer or ONNX Runtime: nothing in its dependency tree
/// (read from Cargo.lock, which lists every package's dependencies) is either.
#[test]
fn the_web_crate_depends_on_neither_gstreamer_nor_onnx_runtime() {
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.lock")).unwrap()).unwrap();
    let packages = lock["package"].as_array().unwrap();
    let deps_of = |name: &str| -> Vec<String> {
        packages
            .iter()
            .filter(|p| p["name"].as_str() == Some(name))
            .flat_map(|p| p.get("dependencies").and_then(|d| d.as_array()).cloned())
            .flatten()
            .filter_map(|d| d.as_str().map(|s| s.split(' ').next().unwrap().to_string()))
            .collect()
    };
    let tree = |top: &str| -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![top.to_string()];
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone()) {
                todo.extend(deps_of(&n));
            }
        }
        seen
    };
    let heavy = |n: &String| n.starts_with("gstreamer") || n == "ort" || n.starts_with("ort-");
    for krate in ["citywatch-web", "citywatch-db", "citywatch-base"] {
        let t = tree(krate);
        assert!(t.len() > 10, "{krate}: {t:?}");
        let bad: Vec<&String> = t.iter().filter(|n| heavy(n)).collect();
        assert!(bad.is_empty(), "{krate} depends on {bad:?}");
    }
    // The check sees them where they are.
    assert!(tree("citywatch-media").iter().any(heavy));
}
