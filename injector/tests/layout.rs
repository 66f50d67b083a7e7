//! The injector's rooms and what each may use, as `src/lib.rs` and
//! docs/design.md draw them: every `crate::ROOM` a room's code names must be
//! one it is allowed, so the data keeps flowing one way and no cycle comes
//! back. Comments are not code: a doc link may point anywhere.

use std::{collections::BTreeMap, fs, path::Path};

/// Each room, and the rooms it may use (`error` may be used by all).
const ROOMS: &[(&str, &[&str])] = &[
    ("yaml", &[]),
    ("error", &["yaml"]),
    ("config", &["yaml"]),
    ("plan", &["yaml", "config"]),
    ("apply", &["yaml", "plan"]),
    ("verify", &["yaml", "plan", "apply"]),
    ("stream", &["yaml", "config", "plan", "apply", "verify"]),
    (
        "front",
        &["yaml", "config", "plan", "apply", "verify", "stream"],
    ),
    (
        "fuzzing",
        &["yaml", "config", "plan", "apply", "verify", "stream"],
    ),
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The room a source file belongs to: its folder under src/, or its name.
fn room_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The rooms named as `crate::ROOM` in code (not in comments).
fn used_rooms(text: &str) -> Vec<String> {
    let mut used = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                used.push(name);
            }
        }
        // `use crate::{a, b::c}` names several rooms at once.
        if let Some(group) = code.strip_prefix("use crate::{") {
            used.extend(
                group
                    .split([',', '}'])
                    .map(|p| p.trim().split("::").next().unwrap_or("").to_string())
                    .filter(|n| {
                        !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }),
            );
        }
    }
    used
}

#[test]
fn each_room_uses_only_the_rooms_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ROOMS.iter().copied().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen_rooms = std::collections::BTreeSet::new();
    for file in &files {
        let room = room_of(&src, file);
        if matches!(room.as_str(), "lib" | "main") {
            continue;
        }
        seen_rooms.insert(room.clone());
        let Some(may) = allowed.get(room.as_str()) else {
            wrong.push(format!(
                "{}: room {room} is not in the table",
                file.display()
            ));
            continue;
        };
        let text = fs::read_to_string(file).unwrap();
        for used in used_rooms(&text) {
            if used != room && used != "error" && !may.contains(&used.as_str()) {
                wrong.push(format!("{}: {room} uses {used}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every room of the table is there: the table is the layout, not a wish.
    for (room, _) in ROOMS {
        assert!(seen_rooms.contains(*room), "room {room} has no source");
    }
}

#[test]
fn a_use_against_the_flow_is_caught() {
    let used = used_rooms(
        "use crate::{config, stream::inject};\n// crate::front\nlet x = crate::apply::f();\n",
    );
    for room in ["config", "stream", "apply"] {
        assert!(used.iter().any(|u| u == room), "{room} in {used:?}");
    }
    assert!(!used.iter().any(|u| u == "front"), "{used:?}");
}
