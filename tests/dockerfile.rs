//! No Docker engine runs here, so the image is checked by its parts: the
//! Dockerfile's final shape, and that it agrees with what the injector writes
//! and what the empty-root test runs (tests/empty_root.rs runs the binary the
//! `prebuilt` stage copies when .ci/run sets GW_BINARY to it).

use std::{fs, path::Path};

fn dockerfile() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/Dockerfile")).unwrap()
}

/// The instructions of one stage, by its `AS` name.
fn stage(name: &str) -> Vec<String> {
    let text = dockerfile();
    let mut out = Vec::new();
    let mut inside = false;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line.starts_with("FROM ") {
            inside = line.ends_with(&format!(" AS {name}"));
            continue;
        }
        if inside {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn both_image_stages_hold_only_the_binary_as_non_root() {
    let text = dockerfile();
    for name in ["release", "prebuilt"] {
        assert!(
            text.contains(&format!("FROM scratch AS {name}")),
            "{name} must start from scratch"
        );
        let s = stage(name);
        assert_eq!(
            s.iter().filter(|l| l.starts_with("COPY")).count(),
            1,
            "{name}: one file only: {s:?}"
        );
        assert!(
            s.iter().any(|l| l.starts_with("COPY")
                && l.contains("--chmod=0555")
                && l.ends_with(" /graceful-wait")),
            "{s:?}"
        );
        assert!(s.contains(&"USER 65532:65532".to_string()), "{s:?}");
        assert!(
            s.contains(&r#"ENTRYPOINT ["/graceful-wait"]"#.to_string()),
            "{s:?}"
        );
    }
    // The prebuilt stage copies the static build made here.
    assert!(stage("prebuilt").iter().any(|l| l.contains(
        "COPY --chmod=0555 target/x86_64-unknown-linux-gnu/release/graceful-wait /graceful-wait"
    )));
    // The default target is the release image.
    assert_eq!(
        text.lines().rev().find(|l| l.starts_with("FROM")),
        Some("FROM release")
    );
}

#[test]
fn the_injected_init_container_fits_the_image() {
    // The injector's init container runs the image's entrypoint with
    // `install /install` and mounts the volume there — never at /graceful-wait,
    // which would hide the image's own binary.
    let expected = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/test/original-tcp/expected.yaml"),
    )
    .unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&expected).unwrap();
    let init = &docs[0]["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["name"], "graceful-wait-install");
    assert_eq!(init["args"], serde_json::json!(["install", "/install"]));
    assert_eq!(init["volumeMounts"][0]["mountPath"], "/install");
    assert_eq!(init["securityContext"]["runAsUser"], 65532);
    assert_eq!(init["securityContext"]["readOnlyRootFilesystem"], true);
}
