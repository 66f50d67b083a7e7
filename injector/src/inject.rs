//! Walks a manifest stream — every document, the items of a `kind: List` —
//! finds each workload's pod template, and patches the ones the config names.
//! Returns the new text and what happened, workload by workload.

use crate::config::{Config, KINDS};
use crate::edits::{Edit, Editor};
use crate::emit::Style;
use crate::patch::{self, Note, Options};
use crate::plan::{PodPlan, Seg};
use crate::yaml_tree::{Documents, Kind, Node, Pos, YamlError};

/// What happened to one object of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Deployment/name` (or the kind alone when it has no name).
    pub object: String,
    pub notes: Vec<Note>,
}

pub struct Injected {
    pub text: String,
    /// The summary for stderr: what happened, object by object, one line a note.
    pub summary: String,
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

/// What planning one document gave.
pub struct Planned {
    pub edits: Vec<Edit>,
    pub plans: Vec<PodPlan>,
    pub outcomes: Vec<Outcome>,
}

/// Plans, edits, and verifies ([`crate::verify`]): the text returned is one
/// the check has proved, or there is an error and no text.
///
/// The stream is handled one document at a time, twice: first planned and
/// edited, the output written as it goes; then each output document is
/// checked against its input document planned again, and planned once more
/// itself (which must plan nothing). Only one document's plan is ever held,
/// so memory follows the input and output texts, not the number of objects.
pub fn inject(src: &str, config: &Config, options: &Options) -> Result<Injected, YamlError> {
    // Read as kubectl (go-yaml) reads it; edit the text as it is.
    let readable = crate::yaml_tree::tolerant(src);
    let mut text = String::with_capacity(src.len() + src.len() / 4);
    let mut summary = String::new();
    let mut applied = 0;
    for (index, doc) in Documents::new(&readable).enumerate() {
        let Some(root) = doc?.root else { continue };
        let planned = plan_document(src, &root, index, config, options)?;
        crate::report::append(&mut summary, &planned.outcomes);
        applied =
            Editor::apply_into(src, applied, planned.edits, &mut text).map_err(|message| {
                YamlError {
                    pos: root.pos,
                    message,
                }
            })?;
    }
    text.push_str(&src[applied..]);
    if let Some(sabotage) = options.sabotage {
        text = sabotage(&text);
    }
    crate::verify::check(src, &readable, &text, |text, root, index| {
        plan_document(text, root, index, config, options)
    })?;
    Ok(Injected { text, summary })
}

/// Plans one document (`root`, the `index`th of the stream, read from `src`).
pub fn plan_document(
    src: &str,
    root: &Node,
    index: usize,
    config: &Config,
    options: &Options,
) -> Result<Planned, YamlError> {
    let mut editor = Editor::new(
        src,
        Style {
            indentless_seq: indentless(src, root),
        },
    );
    let mut outcomes = Vec::new();
    let mut plans = Vec::new();
    let mut walk = Walk {
        config,
        options,
        editor: &mut editor,
        outcomes: &mut outcomes,
        plans: &mut plans,
        document: index,
        shared: shared_nodes(root),
    };
    walk.object(root, Vec::new())?;
    Ok(Planned {
        edits: editor.into_edits(),
        plans,
        outcomes,
    })
}

/// One document's walk: where it is, and where results go.
struct Walk<'w, 's> {
    config: &'w Config,
    options: &'w Options,
    editor: &'w mut Editor<'s>,
    outcomes: &'w mut Vec<Outcome>,
    plans: &'w mut Vec<PodPlan>,
    document: usize,
    /// Anchored nodes of this document that an alias uses elsewhere.
    shared: Vec<Shared>,
}

/// A node with an anchor (`&name`) that an alias (`*name`) repeats: an edit
/// inside it would change every place that uses it.
struct Shared {
    id: usize,
    start: usize,
    end: usize,
    anchor: Pos,
    alias: Pos,
}

/// The anchored nodes of a document that some alias refers to.
fn shared_nodes(root: &Node) -> Vec<Shared> {
    fn walk(
        node: &Node,
        anchors: &mut Vec<(usize, usize, usize, Pos)>,
        aliases: &mut Vec<(usize, Pos)>,
    ) {
        if let Some(id) = node.anchor {
            anchors.push((id, node.start, node.end, node.pos));
        }
        match &node.kind {
            Kind::Alias(id) => aliases.push((*id, node.pos)),
            Kind::Map(entries) => entries.iter().for_each(|(k, v)| {
                walk(k, anchors, aliases);
                walk(v, anchors, aliases);
            }),
            Kind::Seq(items) => items.iter().for_each(|i| walk(i, anchors, aliases)),
            Kind::Scalar(..) => {}
        }
    }
    let (mut anchors, mut aliases) = (Vec::new(), Vec::new());
    walk(root, &mut anchors, &mut aliases);
    anchors
        .into_iter()
        .filter_map(|(id, start, end, anchor)| {
            let alias = aliases.iter().find(|(a, _)| *a == id)?.1;
            Some(Shared {
                id,
                start,
                end,
                anchor,
                alias,
            })
        })
        .collect()
}

impl Walk<'_, '_> {
    /// The shared node that an edit made since `checkpoint` lands in, if any.
    /// Text appended at the start of the line after a node still belongs to it.
    fn edits_into_shared(&self, checkpoint: usize) -> Option<&Shared> {
        self.editor.since(checkpoint).iter().find_map(|e| {
            self.shared
                .iter()
                .find(|s| s.start <= e.start && e.start <= self.editor.line_after(s.end))
        })
    }

    /// `at` is the path from the document's root to `node`.
    fn object(&mut self, node: &Node, at: Vec<Seg>) -> Result<(), YamlError> {
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
            for (i, item) in node
                .get("items")
                .and_then(Node::as_seq)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let mut path = at.clone();
                path.extend([Seg::Key("items".into()), Seg::Index(i)]);
                self.object(item, path)?;
            }
            return Ok(());
        }
        let skipped = |why: String| Outcome {
            object: label.clone(),
            notes: vec![Note::Skipped(why)],
        };
        let Some(path) = pod_spec_path(kind) else {
            self.outcomes.push(skipped("not a workload kind".into()));
            return Ok(());
        };
        let config_kind = kind.to_ascii_lowercase();
        let Some(rule) = name.and_then(|n| self.config.rule_for(&config_kind, n)) else {
            self.outcomes.push(skipped("not in the config".into()));
            return Ok(());
        };
        let Some(spec) = node.path(path) else {
            self.outcomes
                .push(skipped(format!("no {}", path.join("."))));
            return Ok(());
        };
        if let Kind::Alias(id) = spec.kind {
            let anchored = self.shared.iter().find(|s| s.id == id);
            self.outcomes.push(skipped(format!(
                "its pod spec is an alias (*) of the node anchored at {}: it is edited (or not) where it is defined; write it out in full to hook this workload on its own",
                anchored.map_or("another place".to_string(), |s| s.anchor.to_string())
            )));
            return Ok(());
        }
        let checkpoint = self.editor.checkpoint();
        let mut notes = Vec::new();
        let changes = patch::pod(
            spec,
            rule,
            &self.config.settings,
            self.options,
            self.editor,
            &mut notes,
        )
        .map_err(|message| YamlError {
            pos: spec.pos,
            message,
        })?;
        if let Some((anchor, alias)) = self
            .edits_into_shared(checkpoint)
            .map(|s| (s.anchor, s.alias))
        {
            self.editor.rollback(checkpoint);
            self.outcomes.push(skipped(format!(
                "not changed: an edit would land inside the node anchored at {anchor} (&), which the alias at {alias} (*) repeats, so it would change both places; write the shared part out in full where this workload needs the hook"
            )));
            return Ok(());
        }
        if !changes.is_empty() {
            let mut spec_path = at;
            spec_path.extend(path.iter().map(|k| Seg::Key(k.to_string())));
            self.plans.push(PodPlan {
                document: self.document,
                spec: spec_path,
                object: label.clone(),
                changes,
            });
        }
        self.outcomes.push(Outcome {
            object: label,
            notes,
        });
        Ok(())
    }
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
