//! Walks a manifest stream — every document, the items of a `kind: List` —
//! finds each workload's pod template, and patches the ones the config names.
//! Returns the new text and what happened, workload by workload.

use crate::config::{Config, KINDS};
use crate::edits::{line_after, line_start, Edit, Editor};
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
    /// What happened, object by object ([`crate::report::summary`] writes it
    /// for stderr).
    pub outcomes: Vec<Outcome>,
    /// Whether anything was changed.
    pub changed: bool,
}

/// What a run did, when its output went to a [`Sink`].
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub changed: bool,
}

/// Where the verified output goes, a piece at a time.
pub trait Sink {
    fn write(&mut self, text: &str) -> Result<(), String>;
    /// Forgets everything written (to start over another way).
    fn reset(&mut self) -> Result<(), String>;
}

impl Sink for String {
    fn write(&mut self, text: &str) -> Result<(), String> {
        self.push_str(text);
        Ok(())
    }

    fn reset(&mut self) -> Result<(), String> {
        self.clear();
        Ok(())
    }
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

/// Plans, edits and verifies, into memory: see [`inject_into`].
pub fn inject(src: &str, config: &Config, options: &Options) -> Result<Injected, YamlError> {
    let mut text = String::new();
    let report = inject_into(src, config, options, &mut text)?;
    Ok(Injected {
        text,
        outcomes: report.outcomes,
        changed: report.changed,
    })
}

/// Plans, edits, and verifies ([`crate::verify`]), writing to `sink` only
/// text the check has proved; on an error the sink holds nothing usable and
/// must be dropped.
///
/// The stream is handled one document at a time: each document's region of
/// the text (from the end of the previous one through the line its root ends
/// on) is planned, edited, read back on its own and checked, then written.
/// So memory follows the largest document, not the stream. A region that is
/// not proved on its own (it reads differently alone — a directive or tag
/// handle from earlier in the stream — or something is wrong) sends the
/// whole stream down the slower path that checks it whole, in memory, and
/// either proves it or reports what is wrong.
pub fn inject_into(
    src: &str,
    config: &Config,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<Report, YamlError> {
    lone_carriage_returns(src)?;
    // Read strictly first; when that fails where go-yaml (kubectl) is more
    // tolerant, read as go-yaml does — the text itself is edited as it is.
    match inject_read_as(src, src, config, options, sink) {
        Err(e) => match crate::yaml_tree::tolerated(src, &e) {
            Some(readable) => {
                sink.reset().map_err(sink_error)?;
                inject_read_as(src, &readable, config, options, sink)
            }
            None => Err(e),
        },
        done => done,
    }
}

/// A carriage return not followed by a line feed is a line break to YAML but
/// not to the edits (which go by LF): such a file is refused, clearly.
fn lone_carriage_returns(src: &str) -> Result<(), YamlError> {
    let Some(at) = src
        .match_indices('\r')
        .map(|(i, _)| i)
        .find(|i| src.as_bytes().get(i + 1) != Some(&b'\n'))
    else {
        return Ok(());
    };
    let line = src[..at].matches('\n').count() + 1;
    let col = src[..at].rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Err(YamlError {
        pos: Pos { line, col },
        message: "a carriage return (CR) without a line feed: YAML reads it as a line break, and graceful-inject does not edit files with such line ends; convert them (e.g. with dos2unix or tr '\\r' '\\n')".into(),
    })
}

/// [`inject_into`] with `src` read as `readable` (the same bytes but for
/// line breaks read as spaces).
fn inject_read_as(
    src: &str,
    readable: &str,
    config: &Config,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<Report, YamlError> {
    let first_try = if options.whole_stream {
        Err(Failed::NotStandalone)
    } else {
        by_document(src, readable, config, options, sink)
    };
    match first_try {
        Ok(report) => Ok(report),
        Err(Failed::Error(e)) => Err(e),
        Err(Failed::NotStandalone) => {
            sink.reset().map_err(sink_error)?;
            whole_stream(src, readable, config, options, sink)
        }
    }
}

enum Failed {
    Error(YamlError),
    /// A document's region was not proved on its own.
    NotStandalone,
}

impl From<YamlError> for Failed {
    fn from(e: YamlError) -> Failed {
        Failed::Error(e)
    }
}

fn sink_error(message: String) -> YamlError {
    YamlError {
        pos: Pos { line: 1, col: 1 },
        message,
    }
}

/// The fast path: region by region.
fn by_document(
    src: &str,
    readable: &str,
    config: &Config,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<Report, Failed> {
    let mut outcomes = Vec::new();
    let mut changed = false;
    let mut region_start = 0;
    // The line the region starts on, counted as the regions go by.
    let mut region_line = 1;
    for (index, doc) in Documents::new(readable).enumerate() {
        let Some(root) = doc?.root else { continue };
        let planned = plan_document(src, &root, config, options)?;
        outcomes.extend(planned.outcomes);
        let region_end = line_after(src, root.end);
        let first_line = region_line;
        region_line += src[region_start..region_end].matches('\n').count();
        if planned.edits.is_empty() {
            // Nothing planned: the region is written as it was.
            sink.write(&src[region_start..region_end])
                .map_err(sink_error)?;
            region_start = region_end;
            continue;
        }
        changed = true;
        let in_region = &src[region_start..region_end];
        let mut out = String::with_capacity(in_region.len() * 2);
        let end =
            Editor::apply_into(src, region_start, planned.edits, &mut out).map_err(|message| {
                YamlError {
                    pos: root.pos,
                    message,
                }
            })?;
        if end > region_end {
            return Err(Failed::Error(YamlError {
                pos: root.pos,
                message: "internal error: an edit reaches past its document; nothing was written — please report this with the input and config".into(),
            }));
        }
        out.push_str(&src[end..region_end]);
        if let Some(sabotage) = options.sabotage {
            out = sabotage(&out);
        }
        let origin = crate::verify::Origin {
            document: index,
            line: first_line,
        };
        let region = crate::verify::check_region(
            in_region,
            &out,
            &root,
            &planned.plans,
            !std::ptr::eq(readable, src),
            origin,
            |text, root| plan_document(text, root, config, options),
        );
        if let crate::verify::Region::Unproved = region {
            return Err(Failed::NotStandalone);
        }
        sink.write(&out).map_err(sink_error)?;
        region_start = region_end;
    }
    sink.write(&src[region_start..]).map_err(sink_error)?;
    Ok(Report { outcomes, changed })
}

/// The slower path: the whole output in memory, checked whole.
fn whole_stream(
    src: &str,
    readable: &str,
    config: &Config,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<Report, YamlError> {
    let mut text = String::with_capacity(src.len() + src.len() / 4);
    let mut outcomes = Vec::new();
    let mut applied = 0;
    let mut changed = false;
    for doc in Documents::new(readable) {
        let Some(root) = doc?.root else { continue };
        let planned = plan_document(src, &root, config, options)?;
        outcomes.extend(planned.outcomes);
        changed |= !planned.edits.is_empty();
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
    let origin = crate::verify::Origin {
        document: 0,
        line: 1,
    };
    crate::verify::check(src, readable, &text, origin, |text, root| {
        plan_document(text, root, config, options)
    })?;
    sink.write(&text).map_err(sink_error)?;
    Ok(Report { outcomes, changed })
}

/// Plans one document (`root`, read from `src`).
pub fn plan_document(
    src: &str,
    root: &Node,
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
        // A List's items are objects; so are a KRM ResourceList's (not its
        // functionConfig, which is the function's own).
        if kind == "List" || kind == "ResourceList" {
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
        // The webhook decides the rule from the pod's owner and annotations;
        // the files' runs look it up by kind and name.
        let rule = match &self.options.rule {
            Some(rule) => Some(rule),
            None => name.and_then(|n| self.config.rule_for(&config_kind, n)),
        };
        let Some(rule) = rule else {
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
        // The pod template's metadata: beside its spec (a Pod's is the
        // object's own).
        let meta = node
            .path(&path[..path.len() - 1])
            .and_then(|template| template.get("metadata"));
        let changes = patch::pod(
            spec,
            meta,
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
                    let line_start = line_start(src, first.start);
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
