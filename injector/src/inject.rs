//! Walks a manifest stream — every document, the items of a `kind: List` —
//! finds each workload's pod template, and patches the ones the config names.
//! Returns the new text and what happened, workload by workload.

use crate::config::{Config, KINDS};
use crate::edits::{Edit, Editor};
use crate::emit::Style;
use crate::patch::{self, Note, Options};
use crate::yaml_tree::{for_each_document, Node, YamlError};

/// What happened to one object of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Deployment/name` (or the kind alone when it has no name).
    pub object: String,
    pub notes: Vec<Note>,
}

pub struct Injected {
    pub text: String,
    pub outcomes: Vec<Outcome>,
}

/// Where each workload kind keeps its pod spec.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        k if KINDS.iter().any(|(_, name)| *name == k) => Some(&["spec", "template", "spec"]),
        _ => None,
    }
}

pub fn inject(src: &str, config: &Config, options: &Options) -> Result<Injected, YamlError> {
    let mut edits: Vec<Edit> = Vec::new();
    let mut outcomes = Vec::new();
    for_each_document(src, |doc| {
        let Some(root) = doc.root else { return Ok(()) };
        let mut editor = Editor::new(
            src,
            Style {
                indentless_seq: indentless(src, &root),
            },
        );
        object(&root, config, options, &mut editor, &mut outcomes)?;
        edits.extend(editor.into_edits());
        Ok(())
    })?;
    let text = Editor::apply(src, edits).map_err(|message| YamlError {
        pos: crate::yaml_tree::Pos { line: 1, col: 1 },
        message,
    })?;
    Ok(Injected { text, outcomes })
}

fn object(
    node: &Node,
    config: &Config,
    options: &Options,
    editor: &mut Editor,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), YamlError> {
    if node.as_map().is_none() {
        if node.as_str().is_some_and(|s| !s.trim().is_empty()) || node.as_seq().is_some() {
            return Err(YamlError {
                pos: node.pos,
                message: "this document is not a Kubernetes object (a mapping with kind and metadata); fix or remove it".into(),
            });
        }
        return Ok(()); // an empty document
    }
    let kind = node.get("kind").and_then(Node::as_str).unwrap_or_default();
    let name = node.path(&["metadata", "name"]).and_then(Node::as_str);
    let label = match name {
        Some(n) => format!("{kind}/{n}"),
        None => kind.to_string(),
    };
    if kind == "List" {
        for item in node.get("items").and_then(Node::as_seq).unwrap_or_default() {
            object(item, config, options, editor, outcomes)?;
        }
        return Ok(());
    }
    let Some(path) = pod_spec_path(kind) else {
        outcomes.push(Outcome {
            object: label,
            notes: vec![Note::Skipped("not a workload kind".into())],
        });
        return Ok(());
    };
    let config_kind = kind.to_ascii_lowercase();
    let Some(rule) = name.and_then(|n| config.rule_for(&config_kind, n)) else {
        outcomes.push(Outcome {
            object: label,
            notes: vec![Note::Skipped("not in the config".into())],
        });
        return Ok(());
    };
    let Some(spec) = node.path(path) else {
        outcomes.push(Outcome {
            object: label,
            notes: vec![Note::Skipped(format!("no {}", path.join(".")))],
        });
        return Ok(());
    };
    let mut notes = Vec::new();
    patch::pod(spec, rule, &config.settings, options, editor, &mut notes).map_err(|message| {
        YamlError {
            pos: spec.pos,
            message,
        }
    })?;
    outcomes.push(Outcome {
        object: label,
        notes,
    });
    Ok(())
}

/// Whether this document writes `key:\n- item` (the kubectl and istioctl
/// habit) rather than `key:\n  - item`: read off its first block sequence
/// that is a mapping value.
fn indentless(src: &str, root: &Node) -> bool {
    fn find(src: &str, node: &Node) -> Option<bool> {
        for (k, v) in node.as_map().unwrap_or_default() {
            if let Some(items) = v.as_seq().filter(|_| !v.flow) {
                if let Some(first) = items.first() {
                    let line_start = src[..first.start].rfind('\n').map_or(0, |i| i + 1);
                    let dash = src[line_start..first.start].rfind('-')?;
                    let key_col = src[..k.start]
                        .rfind('\n')
                        .map_or(k.start, |i| k.start - i - 1);
                    return Some(dash <= key_col);
                }
            }
            if let Some(found) = find(src, v) {
                return Some(found);
            }
        }
        None
    }
    find(src, root).unwrap_or(true)
}
